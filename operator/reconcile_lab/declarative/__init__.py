"""The declarative engine: a kopf operator that keeps a Deployment and a Service equal to each
WebApp. ``render`` and ``status`` are pure; ``reconciling`` decides; ``kube`` is the only
kubernetes-client adapter; ``handlers`` wires kopf; ``command`` wires the CLI."""
