"""Local clusters and engines: build, start, stop and describe them.

Adapters around processes (go, kwokctl, kind, dockerd); never imports kubernetes or docker
clients. Nothing here touches the user's ~/.kube/config.
"""
