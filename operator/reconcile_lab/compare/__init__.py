"""The side-by-side comparison: the same scenarios against every engine, measured.

Pure core (no I/O, no clock, no client library; listed in the import-linter "pure core"
contract): ``scenarios`` (what to do), ``timeline`` (what was seen and what it means),
``report`` (the Markdown table and the JSON), ``view`` (the live view's frame).

Adapters (the only modules here that touch the world): ``probes`` (read Docker and the
Kubernetes API), the drivers that type the commands a person would type and break things
(``driving``: what they share; ``kubedriver``: the operator's side; ``dockerdrivers``: the four
Docker engines), ``processes`` (the harness's own commands and background programs),
``harness`` (run the matrix on threads, write the files), ``plot`` (matplotlib → PNG), ``live`` (the
terminal view's refresh loop, Ctrl-C ends it). ``command`` wires ``reconcile-lab compare`` and ``watch``.
"""
