"""A folder of WebApp files as the definition of what runs: ``reconcile-lab sync DIR`` makes a
cluster equal to it, a file removed removes its app (``plans`` decides, ``command`` wires)."""
