"""Run a streamer in a background process and receive its items over ZeroMQ.

`ZMQStreamer` starts a worker process per iteration; the worker sends each
item to the consumer in the wire format of `pescador._zmq_wire`
(`zmq_send_data`, `zmq_recv_data`), over a Unix socket in a private
directory or loopback TCP.
"""

import multiprocessing
import os
import pickle
import shutil
import signal
import tempfile
from multiprocessing.connection import wait

import zmq

from ._zmq_wire import RemoteTraceback  # noqa: F401 (importable here)
from ._zmq_wire import (_DATA, _END, _ERROR, _TOKEN_SIZE, _encode,
                        _error_frames, _read, zmq_recv_data, zmq_send_data)
from .core import Streamer
from .exceptions import PescadorError
from .util import _check_choice, _is_int, _is_number

__all__ = ["ZMQStreamer", "zmq_send_data", "zmq_recv_data"]

_SAFETY_POLL_MS = 1000  # how often a blocked worker checks its consumer
_POLL_MS = 100  # how often a waiting consumer checks its worker
_TRANSPORTS = (None, "ipc", "tcp")


# -- the worker process ---------------------------------------------------

class _Stop(BaseException):
    """Raised in the worker by SIGTERM, or when the consumer is gone."""


def _raise_stop(signum, frame):
    raise _Stop()


def _consumer_alive():
    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()


def _push(socket, frames, copy):
    """Send one message, waiting while the queue is full (the high-water
    mark), and giving up if the consuming process has died.

    The frames go out one ``send`` each: ``send_multipart`` checks every
    frame first, which costs more than sending a large one.
    """
    last = len(frames) - 1
    for index, frame in enumerate(frames):
        flags = zmq.SNDMORE if index < last else 0
        while True:
            try:
                socket.send(frame, flags, copy=copy)
                break
            except zmq.Again:  # timed out: SNDTIMEO
                if not _consumer_alive():
                    raise _Stop() from None


def _await_stop(wakeup):
    """Block until the consumer asks the worker to stop, or dies.

    The worker must outlive its last message: a peer that disconnects
    loses what the receiving side has not read from the operating system
    yet. SIGTERM may land on a helper thread (pyzmq's), which does not
    interrupt a blocking call here: the wakeup fd, written by every signal,
    does.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    while parent.is_alive():
        wait([parent.sentinel, wakeup])
        try:
            os.read(wakeup, 512)  # SIGTERM's handler runs around here
        except BlockingIOError:
            pass


def _work(streamer, pickled, address, token, hwm, copy, max_iter):
    """The worker's main: stream the items, then an end or error message."""
    # The consumer decides when the worker stops (SIGTERM), not Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_stop)
    wakeup, wakeup_w = os.pipe()
    os.set_blocking(wakeup, False)
    os.set_blocking(wakeup_w, False)
    signal.set_wakeup_fd(wakeup_w, warn_on_full_buffer=False)
    context = zmq.Context()
    socket = context.socket(zmq.PUSH)
    socket.sndhwm = hwm
    socket.sndtimeo = _SAFETY_POLL_MS
    try:
        socket.connect(address)
        try:
            if pickled:
                streamer = pickle.loads(streamer)
            if not isinstance(streamer, Streamer):
                streamer = Streamer(streamer)
            names = {}
            for item in streamer.iterate(max_iter):
                _push(socket, _encode(item, token, names), copy)
            last = [_END + token]
        except _Stop:
            raise
        except BaseException as exc:
            last = _error_frames(exc, token)
        _push(socket, last, True)
        _await_stop(wakeup)
    except _Stop:
        pass
    finally:
        # A SIGTERM from now on simply ends the process.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        os.close(wakeup)
        os.close(wakeup_w)
        socket.close(linger=0)
        context.term()


# -- the consumer ---------------------------------------------------------

def _exit_description(code):
    if code < 0:
        try:
            return "{} ({})".format(code, signal.Signals(-code).name)
        except ValueError:
            pass
    return str(code)


def _check_alive(socket, process):
    """Raise `PescadorError` if the worker has exited without a goodbye
    (after a last look for a message it may have sent before exiting)."""
    if process.exitcode is not None and not socket.poll(_POLL_MS):
        raise PescadorError(
            "The ZMQStreamer worker process (pid {}) exited with code {} "
            "before ending its stream".format(
                process.pid, _exit_description(process.exitcode)))


def _shutdown(process, timeout):
    """Ask the worker to stop (SIGTERM), wait up to ``timeout``, then kill
    it."""
    process.terminate()
    process.join(timeout)
    if process.exitcode is None:
        process.kill()
        process.join()
    process.close()


def _check_int(name, value, low, high=None):
    if not _is_int(value) or value < low or (high is not None
                                             and value > high):
        raise PescadorError("Invalid {}={!r}: expected an int in [{}, {}]"
                            .format(name, value, low, high or "inf"))
    return int(value)


def _check_timeout(timeout):
    if timeout is None or (_is_number(timeout) and timeout >= 0):
        return timeout
    raise PescadorError("Invalid timeout={!r}: expected None or a "
                        "non-negative number of seconds".format(timeout))


def _default_transport():
    return "ipc" if os.name == "posix" and zmq.has("ipc") else "tcp"


class ZMQStreamer(Streamer):
    """A Streamer that runs another streamer in a background process.

    Each iteration starts a fresh worker process that iterates
    ``streamer`` and sends its items over ZeroMQ, while the consumer yields
    them in order. Wrap a whole pipeline (typically a mux) so that it runs
    in parallel with the training loop: ``ZMQStreamer(StochasticMux(...))``.

    Parameters
    ----------
    streamer : Streamer, mux, or anything `Streamer` accepts
        Its items must be dicts of numpy arrays (str keys; any dtype but
        object; any shape; any memory layout; numpy scalars become 0-d
        arrays). Anything else raises `DataError` in the consumer.
    min_port, max_port, max_tries : int
        The TCP port range to bind, on the loopback address 127.0.0.1 only,
        and how many random ports to try (used with ``transport='tcp'``).
    copy : bool
        If False (default), the worker sends the memory of items larger
        than 64 KB without copying (smaller items are packed into one
        message, which is faster, and copied once on arrival).
    timeout : None or number
        Seconds the worker has to stop once asked (SIGTERM, sent when the
        stream ends or the consumer stops early) before it is killed.
        ``None``: wait.
    hwm : int > 0
        High-water mark: the worker blocks once about ``2 * hwm`` items are
        queued (``hwm`` on each side of the connection, plus what the
        operating system buffers: little for ipc, up to the TCP buffer
        sizes for tcp), so a slow consumer keeps memory flat. Larger values
        speed up streams of small items.
    transport : None, 'ipc' or 'tcp'
        ``'ipc'``: a Unix socket in a fresh private directory (mode 0700),
        removed afterwards; ``'tcp'``: loopback TCP. ``None`` (default):
        ``'ipc'`` where available (POSIX; it is the faster), else ``'tcp'``.
    start_method : None or str
        The multiprocessing start method of the worker (``'fork'``,
        ``'spawn'``, ``'forkserver'``); ``None`` uses the current default.
        Except under ``'fork'``, ``streamer`` is pickled.

    Raises
    ------
    PescadorError
        At construction, for an invalid parameter. When iterating: if
        ``streamer`` cannot be pickled for the start method, if no port
        could be bound, or if the worker dies without ending its stream
        (the message names its exit code).
    DataError
        When iterating, if an item is not a dict of numpy arrays.
    Exception
        An exception raised in the worker is re-raised in the consumer after
        the items sent before it: the same exception if it pickles (else a
        `PescadorError` describing it), with the worker's traceback text as
        its ``__cause__``.

    Notes
    -----
    The arrays of items over 64 KB arrive as views of the ZeroMQ message
    memory, without a copy; smaller items are copied once out of their
    message. Either way they are writeable, aligned, and keep their dtype
    (including byte order), shape and C or Fortran order; the rare array
    whose memory is not aligned is copied. Each array keeps its message
    alive, so hold on to items only as long as needed.

    The worker outlives its last message until the consumer has read it
    (a peer that exits early loses messages in transit). At the end of the
    stream, and on an early stop (``break``, ``close()``, garbage
    collection, an exception such as ``KeyboardInterrupt``), the consumer
    sends it SIGTERM, which raises an exception in the worker so that its
    ``finally`` blocks run; it is joined within ``timeout``, then killed.
    Sockets and contexts are closed without linger and the ipc directory
    removed. The worker ignores SIGINT, and exits by itself if the consumer
    process dies. Workers are daemonic, so they cannot start processes
    themselves.

    Examples
    --------
    >>> import numpy as np
    >>> import pescador
    >>> items = [{'x': np.arange(3) + i, 'y': np.float32(i)} for i in range(4)]
    >>> stream = pescador.ZMQStreamer(pescador.Streamer(items))
    >>> for item in stream.iterate(max_iter=2):
    ...     print(item['x'], item['y'])
    [0 1 2] 0.0
    [1 2 3] 1.0
    >>> len(list(stream.cycle(max_iter=10)))
    10
    >>> bad = pescador.ZMQStreamer(pescador.Streamer([{'x': [1, 2]}]))
    >>> list(bad)
    Traceback (most recent call last):
    ...
    pescador.exceptions.DataError: Item key 'x' holds list [1, 2]: expected ...
    """

    def __init__(self, streamer, min_port=49152, max_port=65535,
                 max_tries=100, copy=False, timeout=5, hwm=8, transport=None,
                 start_method=None):
        super().__init__(streamer)
        self.min_port = _check_int("min_port", min_port, 1, 65535)
        self.max_port = _check_int("max_port", max_port, self.min_port,
                                   65535)
        self.max_tries = _check_int("max_tries", max_tries, 1)
        self.copy = bool(copy)
        self.timeout = _check_timeout(timeout)
        self.hwm = _check_int("hwm", hwm, 1)
        self.transport = _check_choice("transport", transport, _TRANSPORTS)
        self.start_method = _check_choice(
            "start_method", start_method,
            (None,) + tuple(multiprocessing.get_all_start_methods()))

    def _iterate(self, max_iter):
        # The worker itself stops after max_iter items.
        with self as active:
            yield from active._source(max_iter)

    def _payload(self, start_method):
        """The streamer as the worker receives it: (object, pickled)."""
        if start_method == "fork":
            return self.streamer, False
        try:
            return pickle.dumps(self.streamer), True
        except Exception as exc:
            raise PescadorError(
                "ZMQStreamer cannot send {!r} to a worker started with {!r}: "
                "it does not pickle ({}: {}). Use generator functions "
                "defined at module level, or the 'fork' start "
                "method".format(self.streamer, start_method,
                                type(exc).__name__, exc)) from exc

    def _bind(self, socket, directory):
        if directory is not None:
            address = "ipc://" + os.path.join(directory, "stream")
            try:
                socket.bind(address)
                return address
            except zmq.ZMQError as exc:
                if self.transport == "ipc":
                    raise PescadorError("ZMQStreamer could not bind {}: {}"
                                        .format(address, exc)) from exc
        try:
            port = socket.bind_to_random_port(
                "tcp://127.0.0.1", self.min_port, self.max_port,
                self.max_tries)
        except zmq.ZMQBindError as exc:
            raise PescadorError(
                "ZMQStreamer could not bind a port in [{}, {}] on 127.0.0.1 "
                "in {} tries".format(self.min_port, self.max_port,
                                     self.max_tries)) from exc
        return "tcp://127.0.0.1:{}".format(port)

    def _source(self, max_iter=None):
        mp_context = multiprocessing.get_context(self.start_method)
        payload, pickled = self._payload(mp_context.get_start_method())
        token = os.urandom(_TOKEN_SIZE)
        transport = self.transport or _default_transport()
        directory = tempfile.mkdtemp(prefix="pescador-") \
            if transport == "ipc" else None
        context = zmq.Context()
        process = None
        try:
            socket = context.socket(zmq.PULL)
            socket.linger = 0
            socket.rcvhwm = self.hwm
            socket.rcvtimeo = _POLL_MS
            address = self._bind(socket, directory)
            worker = mp_context.Process(
                target=_work, name="pescador-zmq-worker", daemon=True,
                args=(payload, pickled, address, token, self.hwm, self.copy,
                      max_iter))
            try:
                worker.start()
            except Exception as exc:
                raise PescadorError("ZMQStreamer could not start its worker "
                                    "process: {}".format(exc)) from exc
            process = worker
            names = {}
            while True:
                try:
                    kind, item = _read(socket, token=token, names=names)
                except zmq.Again:  # timed out: RCVTIMEO
                    _check_alive(socket, process)
                    continue
                if kind == _DATA:
                    yield item
                elif kind is not None:
                    if kind == _ERROR:
                        raise item
                    return
        finally:
            if process is not None:
                _shutdown(process, self.timeout)
            context.destroy(linger=0)
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
