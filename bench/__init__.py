"""Benchmarks and the generators of the documents that publish their figures.

Entry points (each a script): ``convergence.py``, ``drift_repair.py``, ``docker_twin.py`` measure
and save their raw data under ``data/``; ``report.py`` regenerates ``RESULTS.md`` and
``docs/reliability.md`` from committed data without measuring anything. The formatting modules
(``summaries``, ``targets``, ``sections``, ``drills``) are pure: data in, Markdown out.
"""
