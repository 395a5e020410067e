"""The imperative engine: the Docker twin of the operator.

It reads the very same WebApp file and makes it true *once*, with ``docker`` steps that a person
could have typed. From the bottom up:

- pure data, no I/O: ``containers`` (what runs for an app: names, labels, desired and observed),
  ``steps`` (each step and the ``docker`` command it is), ``plan`` (the diff: which steps) and
  ``reports`` (what was observed, what each step and a whole run came to);
- ``engine``: the only Docker SDK adapter, it observes and executes one step at a time;
- ``applying``: one run for one app (lock, observe, plan, execute, report);
- around a run: ``loading`` (read and validate the files), ``printing`` (what a person sees),
  ``recording`` (metrics and logs), ``watching`` (the ``--watch`` polling loop);
- ``command``: the CLI's arguments, help and exit statuses; it wires, it does not decide.

The import-linter contracts in ``pyproject.toml`` keep this order.

What it must not do: keep state anywhere but in Docker's own labels, touch a container or a network
it does not own (label ``reconcile-lab/app=NAME``), publish a port beyond 127.0.0.1, or pull an
image. And on purpose it does not pretend to be a controller: nothing watches the containers after
``apply`` returns (``--watch`` is a naive polling loop, with its limits spelled out).
"""
