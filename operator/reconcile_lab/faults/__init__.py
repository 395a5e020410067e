"""Faults on the operator's own path to the apiserver: a TCP proxy that can cut or stall it.

``switchboard`` (pure) decides what each connection may do in each mode and speaks the control
protocol; ``kubeconfigs`` (pure) points a kubeconfig at the proxy; ``proxy`` does the I/O
(asyncio streams, the control socket); ``command`` wires ``reconcile-lab fault``.
"""
