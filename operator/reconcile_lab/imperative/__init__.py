"""The imperative engine: the Docker twin of the operator.

It reads the very same WebApp file and makes it true *once*, with ``docker`` steps that a person
could have typed: ``plan`` (pure) compares the WebApp with the labelled containers and lists the
steps, ``engine`` (the only Docker SDK adapter) executes them, ``command`` wires both to the CLI.

What it must not do: keep state anywhere but in Docker's own labels, touch a container or a network
it does not own (label ``reconcile-lab/app=NAME``), publish a port beyond 127.0.0.1, or pull an
image. And on purpose it does not pretend to be a controller: nothing watches the containers after
``apply`` returns (``--watch`` is a naive polling loop, with its limits spelled out).
"""
