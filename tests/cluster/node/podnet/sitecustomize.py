"""Loaded by every Python process of a pod on a process node (its folder leads PYTHONPATH).

Pods here share the host's network, so each has its own loopback address instead of a network
namespace; a server that listens on all addresses (``0.0.0.0``, ``::``, ``""``) in a pod means
that pod's addresses, so such binds are narrowed to the pod IP (``$CLOUDML_TEST_POD_IP``): two
replicas of one server can then listen on the same port, as in a cluster.
"""

import os
import socket

_POD_IP = os.environ.get("CLOUDML_TEST_POD_IP", "")
_ANY = ("", "0.0.0.0", "::", "::0")


def _narrowed(sock: socket.socket, address: object) -> object:
    if not (_POD_IP and isinstance(address, tuple) and address and address[0] in _ANY):
        return address
    if sock.family == socket.AF_INET6:
        return (f"::ffff:{_POD_IP}", *address[1:])
    if sock.family == socket.AF_INET:
        return (_POD_IP, *address[1:])
    return address


_bind = socket.socket.bind


def _bind_pod_address(self: socket.socket, address: object) -> None:
    _bind(self, _narrowed(self, address))  # type: ignore[arg-type]


socket.socket.bind = _bind_pod_address  # type: ignore[method-assign,assignment]
