"""Run a streamer in a background process and receive its items over ZeroMQ.

`ZMQStreamer` starts its worker processes (``n_workers``, each running a
share of the stream) per iteration; a worker sends each item to the consumer in the wire format of `pescador._zmq_wire`
(`zmq_send_data`, `zmq_recv_data`), over a Unix socket or loopback TCP.
The process code lives in `pescador._background`: the worker's main
(``worker``), the consumer's side of a worker process (``process``), the
resources of one iteration (``session``), addresses (``address``) and
Ctrl-C handling (``interrupts``); this module is the loop that yields the
items.
"""

import math
import multiprocessing
import os
import pickle
from typing import List
import time
from itertools import islice

import numpy as np
import zmq

from ._background.address import default_transport
from ._background.checkpoint import Progress, Received, check_state
from ._background.session import Session
from ._background.worker import Job
from ._zmq_wire import RemoteTraceback  # noqa: F401 (importable here)
from ._zmq_wire import (_DATA, _ERROR, _SNAPSHOT, _TOKEN_SIZE,
                        zmq_recv_data, zmq_send_data)
from .exceptions import PescadorError
from .split import EpochStreamer, merge_plan
from .util import _check_choice, _is_int, _is_number

__all__ = ["ZMQStreamer", "zmq_send_data", "zmq_recv_data"]

_TRANSPORTS = (None, "ipc", "tcp")
# The largest values the underlying calls accept: ZeroMQ's high-water
# marks are C ints, and waits (select/poll) take milliseconds as C ints.
_MAX_HWM = 2 ** 31 - 1
_MAX_TIMEOUT = 10 ** 6  # seconds (11.6 days); None waits without limit
_POLL_MS = 100  # how often an unordered pool checks for dead workers


def _check_int(name, value, low, high=None):
    if not _is_int(value) or value < low or (high is not None
                                             and value > high):
        raise PescadorError("Invalid {}={!r}: expected an int in [{}, {}]"
                            .format(name, value, low, high or "inf"))
    return int(value)


def _check_timeout(timeout):
    if timeout is None or (_is_number(timeout) and math.isfinite(timeout)
                           and 0 <= timeout <= _MAX_TIMEOUT):
        return timeout
    raise PescadorError(
        "Invalid timeout={!r}: expected None (wait without limit) or a "
        "number of seconds in [0, {}]".format(timeout, _MAX_TIMEOUT))


class ZMQStreamer(EpochStreamer):
    """A Streamer that runs another streamer in background processes.

    Each iteration starts fresh worker processes (one by default) that
    iterate ``streamer`` (each its share of it) and send their items over
    ZeroMQ, while the consumer yields them. Wrap a whole pipeline (typically a mux) so that it runs
    in parallel with the training loop: ``ZMQStreamer(StochasticMux(...))``.

    Parameters
    ----------
    streamer : Streamer, mux, or anything `Streamer` accepts
        Its items must be dicts of numpy arrays (str keys; any dtype but
        object; any shape; any memory layout; numpy scalars become 0-d
        arrays). Anything else raises `DataError` in the consumer.
    min_port, max_port, max_tries : int
        The TCP port range to bind, both ends included (``min_port ==
        max_port`` means that one port), on the loopback address 127.0.0.1
        only, and how many random ports to try (used with
        ``transport='tcp'``).
    copy : bool
        What the consumer gets. If False (default), arrays of 16 KB or
        more are views of the shared memory the worker copied them into
        (no second copy); if True, every array is private memory (one more
        copy, and the shared memory is released at once). Either way, the
        values are those at ``yield`` time: the generator may reuse or
        change its arrays afterwards.
    timeout : None or number
        Seconds the worker has to stop once asked (SIGTERM, sent when the
        stream ends or the consumer stops early) before it is killed: at
        most 10**6 (what the underlying waits accept). ``None``: wait
        without limit.
    hwm : int in [1, 2**31 - 1]
        High-water mark: the worker blocks once about ``2 * hwm`` items are
        queued (``hwm`` on each side of the connection, plus what the
        operating system buffers: little for ipc, up to the TCP buffer
        sizes for tcp), so a slow consumer keeps memory flat. Larger values
        speed up streams of small items. The worker also waits while
        ``2 * hwm`` of its arrays in shared memory (``2 * hwm + 4`` of the
        largest, counting those you hold, then fresh ones) are sent but
        not yet received.
    transport : None, 'ipc' or 'tcp'
        ``'ipc'``: a Unix socket, in Linux's abstract namespace (no file at
        all) or elsewhere in a fresh private directory (mode 0700), removed
        afterwards; ``'tcp'``: loopback TCP. ``None`` (default): ``'ipc'``
        where available (POSIX; it is the faster), else ``'tcp'``.
    start_method : None or str
        The multiprocessing start method of the worker (``'fork'``,
        ``'spawn'``, ``'forkserver'``); ``None`` uses multiprocessing's
        current default (``'fork'`` on Linux before Python 3.14,
        ``'forkserver'`` from 3.14, ``'spawn'`` on macOS and Windows).
        Except under ``'fork'``, ``streamer`` is pickled.
    n_workers : int >= 1
        The number of worker processes. Worker ``i`` runs share ``i`` of
        the stream, ``pescador.shard(streamer, i, n_workers, epoch)``, and
        the consumer merges their items. With ``n_workers > 1`` the stream
        must be splittable (a mux over a list of streamers, possibly
        wrapped in maps, see `pescador.shard`). With more workers than
        streamers, the extra workers' shares are empty: they start, and
        end at once.
    ordered : bool
        True (default): merge the shares by the plan of
        `pescador.split.merge_plan`: round-robin for a `ChainMux` or
        `RoundRobinMux`, random and weighted by each share's total weight
        for a `StochasticMux` or `ShuffledMux`, from a generator seeded
        from the mux's seed and the epoch. So a seeded stream yields the
        same items in the same order at every run with the same
        ``n_workers``, whatever the timing, and each streamer's long-run
        share is its weight. False: yield whichever item arrives first
        (faster when the workers' speeds vary; not reproducible).

    Attributes
    ----------
    epoch : int
        The epoch the next iteration runs: each iteration (and each restart
        of `cycle`) uses the current one and counts it up, so seeded epochs
        differ; a ``copy.deepcopy`` made before iterating replays them.

    Raises
    ------
    PescadorError
        At construction, for an invalid parameter. When iterating: with
        ``n_workers > 1``, if the stream cannot be split (before any
        process starts); if ``streamer`` cannot be pickled for the start
        method, if no port could be bound, or if a worker dies without
        ending its stream (the message names its exit code; the other
        workers are stopped); with ``state=``, if the state does not fit
        (see "Checkpoint and resume" below). `pescador.get_state` of an
        iteration whose shares cannot checkpoint.
    DataError
        When iterating, if an item is not a dict of numpy arrays.
    Exception
        An exception raised in a worker is re-raised in the consumer after
        the items sent before it: the same exception if it pickles (else a
        `PescadorError` describing it), with the worker's traceback text as
        its ``__cause__``. The other workers are stopped.

    Notes
    -----
    Arrays of 16 KB or more are copied once, at ``yield`` time, into
    shared memory (``/dev/shm``), and only an 8-byte descriptor each goes
    over the socket; without ``copy`` they arrive as views of that memory,
    which is freed (or handed back to the worker for reuse) when you drop
    them. Smaller arrays are copied into the message, and once out of it
    on arrival. Either way the arrays are writeable, aligned, and keep
    their dtype (including byte order), shape and C or Fortran order (other
    layouts arrive C-contiguous). Hold on to items only as long as needed.
    No segment outlives the stream in ``/dev/shm``, whatever ends it
    (including SIGKILL of the worker or of the consumer). Where shared
    memory is missing or too small (containers often have 64 MB), arrays
    go over the socket instead, with one ``ShmFallbackWarning`` (a
    ``RuntimeWarning``): slower, same values. See "What sending costs" in
    the parallel guide.

    Each iteration is a new epoch: worker ``i`` runs
    ``shard(streamer, i, n_workers, epoch)``, so a seeded mux gives
    different epochs (with one worker, the first one as in process) and a
    deep copy of the ZMQStreamer replays them; each worker reseeds numpy's
    global generator and `random` from fresh entropy, so unseeded streams
    differ too.

    Maps that wrap the mux (``Streamer(buffer_stream, mux, 32)``) run in
    each worker, on its share: a batch holds items of one share only, as a
    batch of a PyTorch ``DataLoader`` worker does. ``max_iter`` is the
    total over all workers.

    Checkpoint and resume. `pescador.get_state` of an iteration returns
    the position of what the consumer has *received* (the workers run
    ahead of it; their own positions are not used), and ``iterate``,
    ``cycle`` or ``__call__`` with ``state=`` on an equal ZMQStreamer
    (same stream, ``n_workers``, ``ordered`` and ``max_iter``) continues
    from there, e.g. in a new process. Each worker sends the state of its
    share (`pescador.get_state` of it, as JSON) before its first item, then
    after every 1024th item or the first item after a second, in order
    with its items; the consumer keeps, per worker, the last one it has read
    and the count of items received since. Resuming, each worker continues
    its share from that state and skips those items without sending them:
    it re-runs at most 1024 items (or a second's worth), plus what the
    share's own state re-runs (the activations open at the snapshot),
    never the epoch from its start. The merge continues from its own
    position, and ``epoch`` from the state's.

    - ``ordered=True`` with seeded muxes and deterministic generators:
      exact. The resumed iteration yields exactly the items the
      uninterrupted one would have, and the epochs after it continue as
      they would have.
    - ``ordered=False``: each worker continues its share from the last item
      the consumer received from it. The items are exactly the rest of
      each share, in its order; their interleaving is the arrival order,
      as always.
    - Unseeded muxes (``random_state=None``) or random generators: not
      exact. Each worker reseeds numpy from fresh entropy, so the items
      re-run after a snapshot, and all that follows, draw other numbers
      than the uninterrupted run would have.

    A state of another ``n_workers``, ``ordered`` or stream raises
    `PescadorError` saying what differs (a share's state is checked in its
    worker and re-raised in the consumer).

    The worker outlives its last message until the consumer has read it
    (a peer that exits early loses messages in transit). At the end of the
    stream, and on an early stop (``break``, ``close()``, garbage
    collection, an exception such as ``KeyboardInterrupt``, interpreter
    exit), the consumer sends it SIGTERM: a worker inside the user's
    generator gets an exception there, so that its ``finally`` blocks run;
    a worker whose stream has ended closes the generator itself, to the
    end. It is joined within ``timeout``, then killed. Sockets and
    contexts are closed without linger and the ipc directory removed.
    Starting and cleaning up defer Ctrl-C to their end. The worker ignores
    SIGINT, closes the descriptors of the consumer's other iterations that
    it inherited through fork, and exits by itself within a second of its
    consumer's death, whatever it is doing. Workers are daemonic, so they
    cannot start processes themselves. See "Stopping and exiting" in the
    parallel guide.

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

    Two workers, each running half of a mux's streamers:

    >>> mux = pescador.ChainMux([pescador.Streamer(
    ...     [{'x': np.array(10 * s + i)} for i in range(3)]) for s in range(3)])
    >>> pool = pescador.ZMQStreamer(mux, n_workers=2)
    >>> [int(item['x']) for item in pool]
    [0, 10, 1, 11, 2, 12, 20, 21, 22]
    >>> sorted(int(item['x']) for item in pescador.ZMQStreamer(
    ...     mux, n_workers=2, ordered=False))
    [0, 1, 2, 10, 11, 12, 20, 21, 22]

    A checkpoint, and the rest of the epoch from it (in a new process, the
    stream is rebuilt equal; ``json.dumps(state)`` stores it):

    >>> items = pool.iterate()
    >>> [int(next(items)['x']) for _ in range(4)]
    [0, 10, 1, 11]
    >>> state = pescador.get_state(items)
    >>> items.close()
    >>> again = pescador.ZMQStreamer(mux, n_workers=2)
    >>> [int(item['x']) for item in again.iterate(state=state)]
    [2, 12, 20, 21, 22]

    >>> bad = pescador.ZMQStreamer(pescador.Streamer([{'x': [1, 2]}]))
    >>> list(bad)
    Traceback (most recent call last):
    ...
    pescador.exceptions.DataError: Item key 'x' holds list [1, 2]: expected ...
    """

    def __init__(self, streamer, min_port=49152, max_port=65535,
                 max_tries=100, copy=False, timeout=5, hwm=8, transport=None,
                 start_method=None, n_workers=1, ordered=True):
        super().__init__(streamer)
        self.min_port = _check_int("min_port", min_port, 1, 65535)
        self.max_port = _check_int("max_port", max_port, self.min_port,
                                   65535)
        self.max_tries = _check_int("max_tries", max_tries, 1)
        self.copy = bool(copy)
        self.timeout = _check_timeout(timeout)
        self.hwm = _check_int("hwm", hwm, 1, _MAX_HWM)
        self.transport = _check_choice("transport", transport, _TRANSPORTS)
        self.start_method = _check_choice(
            "start_method", start_method,
            (None,) + tuple(multiprocessing.get_all_start_methods()))
        self.n_workers = _check_int("n_workers", n_workers, 1)
        if not isinstance(ordered, (bool, np.bool_)):
            raise PescadorError("Invalid ordered={!r}: expected True or "
                                "False".format(ordered))
        self.ordered = bool(ordered)

        self.epoch = 0

    def _payload(self, start_method):
        """The streamer as the workers receive it: (object, pickled)."""
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

    def _jobs(self, start_method, max_iter, resume):
        """The job of each worker: share ``i`` of ``n_workers`` at this
        iteration's epoch (continuing from ``resume[i]``, a worker's entry
        of a state, if given). ``max_iter`` bounds each share (none can
        yield more than the total); the consumer enforces the total."""
        payload, pickled = self._payload(start_method)
        jobs = []
        for index, worker in enumerate(resume):
            job = Job(payload, pickled, os.urandom(_TOKEN_SIZE), self.hwm,
                      self.copy, max_iter, self.epoch, index=index,
                      count=self.n_workers, consumer_pid=os.getpid())
            if worker is not None:
                job.resume, job.skip = worker["state"], worker["skip"]
                job.ended = worker["ended"]
            jobs.append(job)
        return jobs

    def _source(self, max_iter=None):
        return self._run(max_iter, None)

    def _resume(self, state, max_iter=None):
        state = check_state(state, self.n_workers, self.ordered)
        self.epoch = state["epoch"]
        return self._run(max_iter, state)

    def _state(self, pulled):
        return self._progress.state()

    def _run(self, max_iter, state):
        """The items of this activation, from the start or from ``state``;
        what the consumer has received goes into ``self._progress``."""
        count = self.n_workers
        # Before any process starts: raises for a stream that cannot be
        # split into `count` shares.
        plan = merge_plan(self.streamer, count, self.epoch) \
            if count > 1 else None
        resume = [None] * count if state is None else state["workers"]
        received = [Received() if worker is None else Received(
            worker["state"], worker["skip"], worker["ended"])
            for worker in resume]
        progress = self._progress = Progress(self.epoch, self.ordered,
                                             received)
        session = Session(self.timeout, self.copy)
        try:
            receivers = [_received(session, index, share)
                         for index, share in enumerate(received)]
            if count == 1:  # the worker itself stops after max_iter items
                items = receivers[0]
            elif self.ordered:
                assert plan is not None  # count > 1
                # Raises for a merge state that does not fit, before any
                # process starts.
                items = progress.merge = plan.merge(
                    receivers, None if state is None else state["merge"])
            else:
                items = _first_ready(session, received)
        except BaseException:
            session.close()
            raise
        return self._items(session, items, resume, max_iter)

    def _items(self, session, items, resume, max_iter):
        try:
            mp_context = multiprocessing.get_context(self.start_method)
            session.start(mp_context,
                          self._jobs(mp_context.get_start_method(), max_iter,
                                     resume),
                          self.transport or default_transport(),
                          (self.min_port, self.max_port, self.max_tries))
            try:
                yield from islice(items, max_iter)
            finally:
                items.close()
        finally:
            session.close()


def _received(session, index, received):
    """Worker ``index``'s items, in order, counted in ``received`` (a
    `Received`) with its snapshots; its error raised (a receiver for
    `pescador._merge`)."""
    names: dict = {}
    receive = session.receive
    while True:
        kind, item = receive(index, names)
        if kind == _DATA:
            received.count += 1
            yield item
        elif kind == _SNAPSHOT:
            received.snapshot(item)
        elif kind is not None:
            if kind == _ERROR:
                raise item
            received.ended = True
            return


def _first_ready(session, received):
    """The workers' items in the order they arrive (``ordered=False``),
    until every worker has sent its end; counted in ``received`` (a
    `Received` per worker) with their snapshots."""
    count = len(received)
    sockets = session.sockets
    workers = session.workers
    names: List[dict] = [{} for _ in range(count)]
    poller = zmq.Poller()
    for socket in sockets:
        poller.register(socket, zmq.POLLIN)
    live = set(range(count))
    check = time.monotonic() + _POLL_MS / 1000
    while live:
        ready = dict(poller.poll(_POLL_MS))
        indices = [i for i in sorted(live) if sockets[i] in ready]
        if not indices or time.monotonic() > check:
            # Even while others keep sending: receive reports a worker
            # that exited before its end (after the items it sent).
            check = time.monotonic() + _POLL_MS / 1000
            indices += [i for i in sorted(live) if i not in indices
                        and workers[i].process.exitcode is not None]
        for index in indices:
            kind, item = session.receive(index, names[index])
            if kind == _DATA:
                received[index].count += 1
                yield item
            elif kind == _SNAPSHOT:
                received[index].snapshot(item)
            elif kind is not None:
                if kind == _ERROR:
                    raise item
                received[index].ended = True
                live.discard(index)
                poller.unregister(sockets[index])
