"""``reconcile-lab web``: the live page of both engines in a browser, and the replay of a compare
run. ``model`` and ``replay`` are pure (data in, JSON out); ``serving`` is the HTTP adapter,
``browser`` installs what the browser test drives, ``command`` wires the CLI. The page's files
(plain HTML, CSS and JavaScript, no build step) are in ``reconcile_lab/assets/web``."""
