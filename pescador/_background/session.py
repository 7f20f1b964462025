"""Everything one ZMQStreamer iteration holds, and its one cleanup.

A `Session` owns the iteration's worker processes, ZeroMQ context and
sockets, ipc folder and descriptors. ``start`` starts the workers and
binds one socket per worker; ``receive(i)`` reads the next message of
worker ``i``; ``close()`` releases everything, is idempotent, defers
Ctrl-C, and waits at most ``timeout`` per stop. The loop that yields
items (`pescador.zmq_stream.ZMQStreamer`) sits on top, so that a pool of
workers and a merge can reuse these pieces.

Open sessions are held in a module-level set until closed, and closed at
interpreter exit (`atexit` runs before modules are torn down). Holding
them strongly matters: when the garbage collector frees an abandoned
iterator caught in a reference cycle, only the generator is garbage, so
its ``finally`` closes the session, instead of pyzmq's finalizer
terminating a context whose socket is still open (which blocks forever).
"""

import atexit
import logging
import multiprocessing.util  # noqa: F401 (its exit handler before ours)
import os
import shutil
import time
import warnings

import zmq

from .._zmq_wire import _read
from .address import bind, private_directory
from .interrupts import await_redelivery, deferred_sigint
from .worker import preload
from .process import WorkerProcess
from . import shm

_POLL_MS = 100  # how often a waiting consumer checks its workers
_logger = logging.getLogger("pescador.zmq_stream")
_OPEN: "set[Session]" = set()


def _fd_dir():
    for path in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(path):
            return path
    return None


_FD_DIR = _fd_dir()


def _open_fds():
    """This process's open descriptors (empty where unknown)."""
    if _FD_DIR is None:
        return set()
    fds = set()
    for name in os.listdir(_FD_DIR):
        fd = int(name)
        try:
            os.fstat(fd)  # skip the one listdir used, now closed
        except OSError:
            continue
        fds.add(fd)
    return fds


def inherited_fds():
    """The descriptors of the open sessions, which a forked worker must
    close (their sockets, contexts, pipes and sentinels)."""
    fds = set()
    for session in list(_OPEN):
        fds |= session.fds
    return fds


class Session:
    """The resources of one iteration.

    Parameters
    ----------
    timeout : None or float
        Seconds each worker has to stop once asked before it is killed.
    copy : bool
        Whether received arrays are copied out of their message and of
        shared memory (`ZMQStreamer`'s ``copy``).
    """

    def __init__(self, timeout, copy=False):
        self.timeout, self.copy = timeout, copy
        self.workers = []
        self.sockets = []
        self.context = None
        self.directory = None
        self.reader = None  # of the run's shared memory
        self.fds = set()
        self._fds_before = _open_fds()
        self.closed = False
        _OPEN.add(self)

    def start(self, mp_context, jobs, transport, ports):
        """Start one worker per job, then bind a socket for each and hand
        it its address (Ctrl-C deferred to the end)."""
        await_redelivery()
        preload()
        with deferred_sigint():
            self.directory = private_directory(transport)
            self._share_memory(jobs)
            fork = mp_context.get_start_method() == "fork"
            inherited = inherited_fds() if fork else set()
            for job in jobs:
                job.directory = self.directory
                self.workers.append(WorkerProcess(mp_context, job))
            if fork:  # each worker keeps only its own reading end
                pipes = {fd for worker in self.workers for fd in (
                    worker.address_writer.fileno(),
                    worker.job.address_reader.fileno())}
                for worker in self.workers:
                    worker.job.inherited_fds = sorted(
                        (inherited | pipes)
                        - {worker.job.address_reader.fileno()})
            for worker in self.workers:
                worker.start()
            self._unheard = set(range(len(self.workers)))
            # Not interruptible either: a socket that pyzmq created but
            # did not record yet would make the context's term() block.
            self.context = zmq.Context()
            for worker in self.workers:
                socket = self.context.socket(zmq.PULL)
                self.sockets.append(socket)
                socket.linger = 0
                socket.rcvhwm = worker.job.hwm
                socket.rcvtimeo = _POLL_MS
                worker.send_address(bind(socket, transport, self.directory,
                                         worker.job.index, ports))

    def _share_memory(self, jobs):
        """Give the workers a shared memory prefix, and make the reader of
        their segments; or warn once why large arrays go over the socket
        instead."""
        reason = shm.probe()
        if reason is not None:
            _logger.warning("%s: large arrays go over the socket instead",
                            reason)
            warnings.warn("pescador: {}; large arrays go over the socket "
                          "instead, which is slower. Give the container "
                          "more /dev/shm (e.g. docker --shm-size)".format(
                              reason), shm.ShmFallbackWarning, stacklevel=5)
            return
        prefix = shm.run_prefix()
        self.reader = shm.Reader(prefix)
        for job in jobs:
            job.shm_prefix = prefix

    def receive(self, index, names):
        """The next message of worker ``index``: (kind, payload), as
        `pescador._zmq_wire._read` returns (arrays copied out of the
        message and shared memory if ``copy``); `PescadorError` if the
        worker exits without ending its stream."""
        socket, worker = self.sockets[index], self.workers[index]
        token = worker.job.token
        while True:
            try:
                message = _read(socket, copy=self.copy, token=token,
                                names=names, reader=self.reader)
            except zmq.Again:  # timed out: RCVTIMEO
                if worker.process.exitcode is not None \
                        and not socket.poll(_POLL_MS):
                    worker.check_alive()
                continue
            if self._fds_before is not None:
                self._record_fds(index)
            return message

    def _record_fds(self, index):
        # Once a message of each worker arrived, the context, listening
        # sockets and connections exist: what opened since the start is
        # this session's (recorded at each worker's first message).
        self.fds = _open_fds() - self._fds_before
        self._unheard.discard(index)
        if not self._unheard:
            self._fds_before = None

    def close(self):
        """Stop the workers and release everything; idempotent."""
        try:
            self._close()
        except KeyboardInterrupt:  # it came before the deferral began
            self._close()
            raise

    def _close(self):
        if self.closed:
            return
        with deferred_sigint():
            self.closed = True
            try:
                self._stop_workers()
            finally:
                if self.reader is not None:  # no worker left to add names
                    self.reader.close()
                if self.context is not None:
                    self.context.destroy(linger=0)
                if self.directory is not None:
                    shutil.rmtree(self.directory, ignore_errors=True)
                _OPEN.discard(self)

    def _stop_workers(self):
        for worker in self.workers:
            worker.request_stop()
        deadline = None if self.timeout is None \
            else time.monotonic() + self.timeout
        for worker in self.workers:
            try:
                worker.reap(deadline)
            finally:
                worker.close()


# Exit handlers run last registered first: ours before multiprocessing's,
# which would join a worker that ignores its SIGTERM without a timeout.
@atexit.register
def _close_all():
    for session in list(_OPEN):
        session.close()
