"""The main of a ZMQStreamer worker process, in one small step per job.

`run` is the process target: `_start` (signals, consumer watch, fresh
random seeds, inherited descriptors), `_connect` (the address the consumer
bound), `_send` (the items, then an end or error message), `_await_stop`
(until the consumer has read them and asks the worker to stop) and
`_clean` (sockets, and the user's generator).

How the worker stops. The consumer asks with SIGTERM. The handler only
sets a flag (and Python writes the wakeup fd, which wakes a blocking wait
even when the signal lands on one of pyzmq's threads). It raises `_Stop`
only while the worker runs user code that must be interrupted (a slow
generator), and at most once: an exception raised anywhere else may land
in a finalizer (a generator closed by ``islice`` or by the garbage
collector), be swallowed there with a message on stderr, and leave the
worker waiting for a second signal that never comes. Once the stream has
ended, stopping is the flag alone, so the user's generator is always
closed by the worker itself, to the end of its ``finally`` blocks.
"""

import _thread
import dataclasses
import os
import pickle
import random
import select
import shutil
import signal
import sys
import time
from itertools import islice
from typing import Optional, Sequence

import numpy as np
import zmq

from ..core import Streamer
from ..exceptions import PescadorError
from ..state import get_state, skip
from .._zmq_wire import _END, _encode, _error_frames, _snapshot_frames
from . import shm

_POLL_MS = 200  # a blocked send re-checks the stop flag this often
_WATCH_SECONDS = 0.5  # consumer polling period where pidfd is missing
_MAX_IN_FLIGHT = 1024  # arrays in shared memory, whatever the hwm
# A snapshot of the share's state follows every this many items, or the
# first item after this many seconds: resuming re-runs at most that much
# of each share (plus what its own state re-runs), while the per-item cost
# stays a count and a clock read (50 ns), and the snapshots' (get_state of
# a StochasticMux of 100 streamers and JSON: 70 us) under 70 ns an item.
SNAPSHOT_ITEMS = 1024
SNAPSHOT_SECONDS = 1.0
_NEVER = float("inf")
# Held while the worker puts an array in shared memory, so that no
# segment is created after the watch thread's sweep (the consumer died):
# the thread sweeps holding it, then ends the process.
_SEGMENTS = _thread.allocate_lock()


@dataclasses.dataclass
class Job:
    """What a worker needs: built by the consumer, sent with the process."""

    payload: object  # the streamer, or its pickle
    pickled: bool
    token: bytes  # authenticates this iteration's messages
    hwm: int
    copy: bool
    max_iter: Optional[int]
    epoch: int
    index: int  # this worker's share: shard(streamer, index, count, epoch)
    count: int
    consumer_pid: int
    directory: Optional[str] = None  # the ipc folder, removed if orphaned
    address_reader: object = None  # set by WorkerProcess
    inherited_fds: Sequence[int] = ()  # what to close, under fork
    shm_prefix: Optional[str] = None  # the run's shared memory, if usable
    # Resuming: the share's state to continue from (None: from its start),
    # the items after it that the consumer had already received, and
    # whether the consumer had seen the share end (then it sends nothing).
    resume: Optional[dict] = None
    skip: int = 0
    ended: bool = False


def preload():
    """Import in the consumer, before forking, what every worker imports
    (numpy 2 imports numpy.random lazily: 10 ms before the first item)."""
    import numpy.random  # noqa: F401
    from .. import split  # noqa: F401


class _Stop(BaseException):
    """Raised in the worker by the consumer's stop request (SIGTERM)."""


class _Control:
    """The stop flag, and whether a stop request may raise `_Stop` now."""

    stop = False
    interruptible = False
    wakeup = -1

    def on_sigterm(self, signum, frame):
        self.stop = True
        if self.interruptible:
            self.interruptible = False  # at most one _Stop
            raise _Stop()


def _ignore_stop(unraisable, previous=sys.unraisablehook):
    """Drop a `_Stop` swallowed by a finalizer (the flag still stops us)."""
    if not isinstance(unraisable.exc_value, _Stop):
        previous(unraisable)


# -- start ----------------------------------------------------------------

def _start(job):
    """Install the signal handling, watch the consumer, close what the
    worker inherited but does not need, and reseed the global generators.
    Returns the `_Control`."""
    control = _Control()
    # Ctrl-C reaches the whole process group: the consumer decides when
    # the worker stops, not the terminal. The consumer blocked SIGINT
    # while forking, so that none lands before this line.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    wakeup, wakeup_w = os.pipe()
    for fd in (wakeup, wakeup_w):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wakeup_w, warn_on_full_buffer=False)
    control.wakeup = wakeup
    signal.signal(signal.SIGTERM, control.on_sigterm)
    sys.unraisablehook = _ignore_stop
    for fd in job.inherited_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    # A bare thread: threading.Thread.start() waits until it runs, which
    # costs milliseconds on a busy machine before the first item.
    _thread.start_new_thread(_watch_consumer,
                             (job.consumer_pid, job.directory, control,
                              job.shm_prefix, job.index))
    # Under fork every worker starts from the consumer's global state;
    # without this, unseeded streams would replay it at every epoch.
    np.random.seed()
    random.seed()
    return control


def _watch_consumer(pid, directory, control=None, shm_prefix=None,
                    index=0):
    """End the process soon after the consumer dies, whatever the main
    thread is doing, after removing what the consumer left behind.

    A thread rather than ``prctl(PR_SET_PDEATHSIG)``: the kernel sends
    that signal when the *thread* that forked the worker exits (a
    consumer iterating in a short-lived thread would lose its worker),
    and under forkserver the parent is the fork server, not the consumer.
    A pidfd (Linux 5.3+) becomes readable when the consumer exits; a
    sibling holding our pipes open cannot delay it. Elsewhere, poll.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError) as exc:
        pidfd = None
        gone = isinstance(exc, ProcessLookupError)
    else:
        gone = False
    if pidfd is not None:
        select.select([pidfd], [], [])
    elif not gone:
        while _alive(pid):
            time.sleep(_WATCH_SECONDS)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
    if shm_prefix is not None:
        # The consumer unlinks the segments it received; the others are
        # ours to remove. Stopping makes a writer waiting for the dead
        # consumer give up the lock (its `waiting` hook raises).
        control.stop = True
        if _SEGMENTS.acquire(timeout=1.0):
            shm.sweep(shm.worker_prefix(shm_prefix, index))
    os._exit(1)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


# -- connect and send -------------------------------------------------------

def _connect(job):
    """(context, PUSH socket) connected to the address the consumer
    bound, which it sends once the worker is started (see
    `pescador._background.process`)."""
    address = job.address_reader.recv_bytes().decode()
    job.address_reader.close()
    context = zmq.Context()
    socket = context.socket(zmq.PUSH)
    socket.linger = 0
    socket.sndhwm = job.hwm
    socket.sndtimeo = _POLL_MS
    socket.connect(address)
    return context, socket


def _streamer(job):
    """The streamer of this worker's share and epoch."""
    from ..split import shard
    streamer = job.payload
    if job.pickled:
        streamer = pickle.loads(streamer)
    if not isinstance(streamer, Streamer):
        streamer = Streamer(streamer)
    return shard(streamer, job.index, job.count, epoch=job.epoch)


def _push(socket, frames, copy, control):
    """Send one message, waiting while the queue is full (the high-water
    mark) until the consumer takes it or asks the worker to stop.

    A blocking send with a timeout (SNDTIMEO): no exception per message
    while the queue is full, and the stop flag is read at least every
    `_POLL_MS`, even if the signal landed on another thread. The frames go
    out one ``send`` each: ``send_multipart`` checks every frame first,
    which costs more than sending a large one.
    """
    last = len(frames) - 1
    for index, frame in enumerate(frames):
        flags = zmq.SNDMORE if index < last else 0
        while True:
            try:
                socket.send(frame, flags, copy=copy)
                break
            except zmq.Again:
                if control.stop:
                    raise _Stop() from None


def _drain(fd):
    try:
        os.read(fd, 512)
    except BlockingIOError:
        pass


def _writer(job, control):
    """The shared memory writer of this worker, or None (the consumer
    found shared memory unusable, and warned)."""
    if job.shm_prefix is None:
        return None

    def waiting():
        if control.stop:  # the consumer asks us to stop, or is dead
            raise _Stop()

    in_flight = min(2 * job.hwm, _MAX_IN_FLIGHT)
    writer = shm.Writer(job.shm_prefix, worker=job.index,
                        in_flight=in_flight, slots=in_flight + 4,
                        waiting=waiting, warn=False)
    put = writer.put

    def locked_put(array, order=None):
        with _SEGMENTS:
            return put(array, order)

    writer.put = locked_put  # type: ignore[method-assign]
    return writer


def _stream(socket, job, control, opened, writer=None):
    """Send the items of the stream, after a snapshot of the share's
    state, and another after each `SNAPSHOT_ITEMS` items (or the first
    item after `SNAPSHOT_SECONDS`); return the end message.

    Runs interruptible: a stop request raises `_Stop` here (or in the
    user's code it calls). The user's iterator goes into ``opened`` for
    the caller to close.
    """
    control.interruptible = True
    token = job.token
    if job.ended:
        return [_END + token]
    # Not iterate(max_iter): the caller must hold the generator itself,
    # so that it is closed there, not by the garbage collector when an
    # islice runs out (where a stop request could interrupt its cleanup).
    source = _streamer(job).iterate(state=job.resume)
    opened.append(source)
    skip(source, job.skip, "share {} of {}".format(job.index, job.count))
    items = source
    if job.max_iter is not None:
        # No share can yield more than the total (the consumer enforces
        # it): count what this share yielded before the resumed point.
        before = job.skip + (job.resume["taken"] if job.resume else 0)
        items = islice(source, max(job.max_iter - before, 0))
    names: dict = {}
    in_flight = writer.in_flight if writer is not None else 0
    # A first snapshot before the first item names the share's stream,
    # so that a state of another stream is refused when resuming.
    due = _push_snapshot(socket, source, 0, token, control)
    clock = time.monotonic
    deadline = clock() + SNAPSHOT_SECONDS if due < _NEVER else _NEVER
    for sent, item in enumerate(items, 1):
        frames = _encode(item, token, names, writer, in_flight)
        # Copied: the values sent are those at yield time, even if the
        # generator changes its arrays afterwards (frames of 64 KB or
        # less are copied by pyzmq anyway).
        _push(socket, frames, True, control)
        if sent >= due or clock() >= deadline:
            due = _push_snapshot(socket, source, sent, token, control)
            deadline = clock() + SNAPSHOT_SECONDS if due < _NEVER \
                else _NEVER
        if control.stop:  # a _Stop swallowed by a finalizer
            raise _Stop()
    control.interruptible = False
    return [_END + token]


def _push_snapshot(socket, source, sent, token, control):
    """Send the share's state after ``sent`` items; return when the next
    one is due (never, once the share has said it cannot checkpoint)."""
    try:
        frames = _snapshot_frames(sent, token, state=get_state(source))
        due = sent + SNAPSHOT_ITEMS
    except (PescadorError, TypeError, ValueError) as exc:
        frames = _snapshot_frames(sent, token, error=str(exc))
        due = _NEVER
    _push(socket, frames, True, control)
    return due


def _send(socket, job, control, writer=None):
    """Stream the items, then close the user's iterator (not
    interruptible: its cleanup runs to the end); return the last message
    to send (end or error), or None if asked to stop."""
    opened: list = []
    try:
        try:
            last = _stream(socket, job, control, opened, writer)
        except _Stop:
            raise
        except BaseException as exc:
            control.interruptible = False
            last = _error_frames(exc, job.token)
    except _Stop:  # even one landing in the handler above
        last = None
    control.interruptible = False
    for source in opened:
        try:
            source.close()
        except BaseException as exc:
            if last is not None and last[0][:1] == _END:
                last = _error_frames(exc, job.token)
    return last


# -- stop and clean -----------------------------------------------------------

def _await_stop(control):
    """Block until the consumer asks the worker to stop.

    The worker must outlive its last message: a peer that disconnects
    loses what the receiving side has not read from the operating system
    yet. The consumer's death ends the process from the watch thread.
    """
    while not control.stop:
        select.select([control.wakeup], [], [], _POLL_MS / 1000)
        _drain(control.wakeup)


def _clean(context, socket):
    if socket is not None:
        socket.close(linger=0)
    if context is not None:
        context.term()


def run(job):
    """The worker process's main (the target of its ``Process``)."""
    control = _start(job)
    context = socket = writer = None
    try:
        control.interruptible = True
        context, socket = _connect(job)
        control.interruptible = False
        writer = _writer(job, control)
        last = _send(socket, job, control, writer)
        if last is not None:
            _push(socket, last, True, control)
            _await_stop(control)
    except _Stop:
        pass
    except EOFError:
        # The consumer closed the iteration before sending the address.
        raise SystemExit(1) from None
    finally:
        control.interruptible = False
        _clean(context, socket)
        if writer is not None:  # after the consumer has read everything
            with _SEGMENTS:
                writer.close()
