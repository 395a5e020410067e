"""Observability shared by both engines: Prometheus metrics and structlog logging."""
