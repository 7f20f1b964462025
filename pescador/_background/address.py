"""Where the consumer listens: private ipc addresses and loopback ports."""

import errno
import os
import random
import sys
import tempfile

import zmq

from ..exceptions import PescadorError

# Linux has an abstract Unix socket namespace: an address there leaves no
# file-system entry, so a consumer killed with SIGKILL leaves nothing.
ABSTRACT_IPC = sys.platform.startswith("linux")


def default_transport():
    return "ipc" if os.name == "posix" and zmq.has("ipc") else "tcp"


def private_directory(transport):
    """A fresh 0700 folder for the ipc socket files, or None when the
    socket needs no file (tcp, or Linux's abstract namespace)."""
    if transport != "ipc" or ABSTRACT_IPC:
        return None
    return tempfile.mkdtemp(prefix="pescador-")


def ipc_address(directory, index):
    """An unguessable ipc address for worker ``index``.

    Anyone on the machine may connect to an abstract address (it has no
    file permissions), as to a loopback port: messages without the
    iteration's token are ignored (see `pescador._zmq_wire`).
    """
    if directory is None:
        return "ipc://@pescador-{}-{}".format(os.urandom(12).hex(), index)
    return "ipc://" + os.path.join(directory, "stream-{}".format(index))


def bind(socket, transport, directory, index, ports):
    """Bind ``socket``; return its address.

    ``ports`` is ``(min_port, max_port, max_tries)``, both ends included
    (pyzmq's ``bind_to_random_port`` never tries ``max_port``).
    """
    if transport == "ipc":
        address = ipc_address(directory, index)
        try:
            socket.bind(address)
            return address
        except zmq.ZMQError as exc:
            raise PescadorError("ZMQStreamer could not bind {}: {}"
                                .format(address, exc)) from exc
    min_port, max_port, max_tries = ports
    count = max_port - min_port + 1
    if count <= max_tries:
        candidates = iter(
            random.sample(range(min_port, max_port + 1), count))
    else:
        candidates = (random.randint(min_port, max_port)
                      for _ in range(max_tries))
    for port in candidates:
        address = "tcp://127.0.0.1:{}".format(port)
        try:
            socket.bind(address)
            return address
        except zmq.ZMQError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise PescadorError("ZMQStreamer could not bind {}: {}"
                                    .format(address, exc)) from exc
    raise PescadorError(
        "ZMQStreamer could not bind a port in [{}, {}] on 127.0.0.1 in {} "
        "tries".format(min_port, max_port, min(count, max_tries)))
