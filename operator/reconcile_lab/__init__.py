"""reconcile-lab: one WebApp file, two engines that make it true, measured side by side."""

__version__ = "0.1.0"
