"""Ray: run the shares of a stream on a Ray cluster, merge them here.

The same two pieces as ``ZMQStreamer(n_workers=k)``: `pescador.shard`
splits the stream (in the consumer, so that a stream that cannot be split
fails before any remote work starts) and the plan of
`pescador.split.merge_plan` merges the shares back. Ray only executes.

Each share runs as one Ray *streaming generator task* per epoch, not as an
actor: a share is a one-shot generator (the next epoch is a new share with
new seeds), which is exactly what a streaming task is, and Ray then gives
us for free what an actor would make us build: scheduling on any node with
a free CPU, a bounded number of items ahead of the consumer
(``_generator_backpressure_num_objects``), cancellation (``ray.cancel``)
and a failure reported on the task's next item. An actor would only pay
off to keep state warm across epochs.
"""

import random
import re
from itertools import islice
from typing import Any, Dict, Generator, Iterator, List, Optional

import numpy as np
import ray
from ray.exceptions import RayError, RayTaskError

from .._zmq_wire import RemoteTraceback
from ..core import Streamer
from ..exceptions import PescadorError
from ..split import EpochStreamer, merge_plan, shard
from ..util import _check_positive_int, _is_number

__all__ = ["RayStreamer"]

# Task options RayStreamer sets itself: a share is never retried (a rerun
# would yield its first items again), and backpressure is its own parameter.
_RESERVED = ("num_returns", "max_retries", "retry_exceptions",
             "_generator_backpressure_num_objects")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _run_share(share: Streamer) -> Iterator[Any]:
    """The remote task: the items of one share."""
    # Ray reuses worker processes: a share must not inherit the global
    # generators of the previous task (an unseeded mux draws from numpy's).
    np.random.seed()
    random.seed()
    # Not `yield from`: Ray's executor may send() into this generator, and
    # a `yield from` would pass that on to the share's own iterators.
    for item in share.iterate():  # noqa: UP028
        yield item


_share_task = ray.remote(num_returns="streaming", max_retries=0)(_run_share)


def _connect() -> None:
    """Use the connected cluster, else start a local one.

    A cluster started here is shut down by Ray's own ``atexit`` hook (and
    its reaper process, should the interpreter be killed).
    """
    if not ray.is_initialized():
        ray.init()


def _remote_traceback(error: RayTaskError) -> RemoteTraceback:
    """The traceback text of a share's exception, as ZMQStreamer gives it."""
    # The dual RayTaskError(ValueError) instance prints the remote
    # traceback; a plain RayTaskError keeps it in traceback_str.
    text = getattr(error, "traceback_str", None) or str(error)
    return RemoteTraceback(_ANSI.sub("", text))


def _get(ref: "ray.ObjectRef", index: int, count: int) -> Any:
    """The item in ``ref``, or the share's failure as an exception."""
    try:
        return ray.get(ref)
    except RayTaskError as error:
        if isinstance(error.cause, Exception) and not isinstance(
                error.cause, RayError):
            raise error.cause from _remote_traceback(error)
        failure: RayError = error
    except RayError as error:
        failure = error
    raise PescadorError(
        "RayStreamer: share {} of {} was lost ({}: {}); a lost share is "
        "not restarted".format(index, count, type(failure).__name__,
                               _ANSI.sub("", str(failure)).strip()[:500])
    ) from failure


def _wait(generators: List[Any], timeout: Optional[float],
          names: str) -> List[Any]:
    """The generators whose next item (or end) is ready, within
    ``timeout``."""
    ready, _ = ray.wait(generators, num_returns=1, timeout=timeout)
    if not ready:
        raise PescadorError(
            "RayStreamer: no item from {} in {} s (timeout): its worker or "
            "node may be lost, or an item takes longer than timeout to "
            "make".format(names, timeout))
    return ready


def _receive(generator: Any, index: int, count: int,
             timeout: Optional[float]) -> Iterator[Any]:
    """Share ``index``'s items in order: a receiver for the merge."""
    name = "share {} of {}".format(index, count)
    while True:
        if not generator.next_ready():  # ray.wait costs as much as ray.get
            _wait([generator], timeout, name)
        try:
            ref = next(generator)
        except StopIteration:
            return
        yield _get(ref, index, count)


def _first_ready(generators: List[Any], timeout: Optional[float]
                 ) -> Generator[Any, None, None]:
    """The shares' items in the order they are ready (``ordered=False``)."""
    count = len(generators)
    live = list(range(count))
    while live:
        names = "any of shares {}".format(live)
        ready = _wait([generators[i] for i in live], timeout, names)[0]
        index = next(i for i in live if generators[i] is ready)
        # The share served goes last, so that ray.wait's order (the order
        # of its list) starves none.
        live.remove(index)
        try:
            ref = next(ready)
        except StopIteration:
            continue
        live.append(index)
        yield _get(ref, index, count)


def _cancel(generators: List[Any], timeout: Optional[float]) -> None:
    """Stop the shares' tasks; return once none runs (or kill them after
    ``timeout``)."""
    for generator in generators:
        ray.cancel(generator)
    done = [generator.completed() for generator in generators]
    _, running = ray.wait(done, num_returns=len(done), timeout=timeout,
                          fetch_local=False)
    if running:
        # A task stuck in C code does not see the KeyboardInterrupt that
        # ray.cancel raises: kill its worker.
        for generator in generators:
            ray.cancel(generator, force=True)


def _check_options(options: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise PescadorError("RayStreamer: invalid options={!r}: expected a "
                            "dict of Ray task options".format(options))
    reserved = sorted(set(options) & set(_RESERVED))
    if reserved:
        raise PescadorError(
            "RayStreamer: options may not set {}: RayStreamer sets them "
            "(use max_in_flight for backpressure)".format(reserved))
    return dict({"num_cpus": 1}, **options)


class RayStreamer(EpochStreamer):
    """A Streamer whose shares run as tasks on a Ray cluster.

    The stream is split with `pescador.shard` into ``n_workers`` shares;
    each share runs as a Ray task, on whichever node of the cluster has a
    free CPU, and the consumer merges their items exactly as
    ``ZMQStreamer(streamer, n_workers=n_workers)`` does. Uses the cluster
    this process is connected to (``ray.init(address=...)`` before), else
    starts a local one with ``ray.init()``: the same script runs on a
    laptop and on a cluster.

    Parameters
    ----------
    streamer : Streamer or mux
        With ``n_workers > 1`` it must be splittable (a mux over a list of
        streamers, possibly wrapped, see `pescador.shard`). Its shares and
        their items must pickle (Ray uses cloudpickle: functions defined in
        a script travel by value; pescador itself, and modules the stream
        imports, must be installed on every node).
    n_workers : int >= 1
        The number of shares, each one Ray task of ``options['num_cpus']``
        CPUs (1 by default).
    ordered : bool
        True (default): merge the shares by the plan of
        `pescador.split.merge_plan` (round-robin for a `ChainMux` or
        `RoundRobinMux`, random and weighted for a `StochasticMux` or
        `ShuffledMux`), so that a seeded stream gives the same items in the
        same order at every run with the same ``n_workers``, whatever the
        timing. False: yield items as they become ready, from any share.
    timeout : None or number > 0
        Seconds the consumer waits for a share's next item (and for
        cancelled tasks to stop) before raising `PescadorError`. ``None``:
        wait for as long as Ray reports no failure.
    max_in_flight : int >= 1
        Items a share may produce ahead of the consumer (Ray's generator
        backpressure): memory stays flat on an infinite stream.
    options : None or dict
        More Ray task options for the shares, e.g. ``{'num_cpus': 2}``,
        ``{'scheduling_strategy': 'SPREAD'}``, ``{'runtime_env': ...}``.

    Attributes
    ----------
    epoch : int
        The epoch the next iteration runs: each iteration (and each restart
        of `cycle`) uses the current one and counts it up. It is mixed into
        the shares' seeds (`pescador.shard`), so epochs differ; a
        ``copy.deepcopy`` made before iterating replays the same epochs.

    Raises
    ------
    PescadorError
        At construction for an invalid parameter. When iterating: with
        ``n_workers > 1``, if the stream cannot be split (before any task
        starts); if a share's worker or node is lost (Ray reports it), or
        no item comes from a share within ``timeout``.
    Exception
        An exception raised in a share is re-raised in the consumer with
        its own type, after the items of that share before it, with the
        remote traceback text as its ``__cause__``
        (`pescador.zmq_stream.RemoteTraceback`).

    Notes
    -----
    **How items travel.** A share's task puts each item in Ray's object
    store on its node; the consumer fetches it into the object store of its
    own node (nothing to fetch when the task ran there) and reads it from
    shared memory without a copy: numpy arrays in items are *read-only*
    views of the object store, which keep the item there as long as they
    live. Copy an array (``x.copy()``) to write to it. Ray stores small
    items (under 100 KB) inline instead, in the consumer's memory. Each
    item costs Ray a fraction of a millisecond: for small items, batch in
    the shares (``Streamer(buffer_stream, mux, 64)``).

    **Failures.** A lost worker or node ends the stream with a
    `PescadorError` (tasks are never retried: a retried share would repeat
    items). Restarting a lost share from its last state needs resumable
    streams, which are not part of RayStreamer yet.

    **Early stop.** ``break``, ``close()``, garbage collection or an
    exception in the consumer cancel every share's task (``ray.cancel``,
    which raises ``KeyboardInterrupt`` in the task, so its ``finally``
    blocks run), and wait up to ``timeout`` for them to stop before
    killing their workers. A cluster started by RayStreamer is left
    running for the next iteration, and shut down by Ray at exit.

    Examples
    --------
    >>> import ray
    >>> import pescador
    >>> from pescador.adapters import RayStreamer
    >>> _ = ray.init(num_cpus=2, include_dashboard=False)
    >>> mux = pescador.ChainMux([pescador.Streamer(range(i, i + 3))
    ...                          for i in (0, 10, 20)])
    >>> stream = RayStreamer(mux, n_workers=2)
    >>> list(stream)
    [0, 10, 1, 11, 2, 12, 20, 21, 22]
    >>> list(stream.iterate(max_iter=4))
    [0, 10, 1, 11]
    >>> sorted(RayStreamer(mux, n_workers=2, ordered=False))
    [0, 1, 2, 10, 11, 12, 20, 21, 22]
    >>> stream.epoch
    2
    >>> ray.shutdown()
    """

    def __init__(self, streamer: Any, n_workers: int, ordered: bool = True,
                 timeout: Optional[float] = 60.0, max_in_flight: int = 8,
                 options: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(streamer)
        self.n_workers = _check_positive_int(n_workers, "n_workers",
                                              "RayStreamer")
        self.ordered = bool(ordered)
        if not (timeout is None or (_is_number(timeout) and timeout > 0)):
            raise PescadorError(
                "RayStreamer: invalid timeout={!r}: expected None or a "
                "number of seconds > 0".format(timeout))
        self.timeout = timeout
        self.max_in_flight = _check_positive_int(
            max_in_flight, "max_in_flight", "RayStreamer")
        self.options = _check_options(options)
        self.epoch = 0

    def _source(self, max_iter: Optional[int] = None) -> Iterator[Any]:
        count, epoch = self.n_workers, self.epoch
        # Both from the same stream, k and epoch; merge_plan raises for a
        # stream that cannot be split, before any remote work.
        plan = merge_plan(self.streamer, count, epoch=epoch)
        shares = [shard(self.streamer, index, count, epoch=epoch)
                  for index in range(count)]
        _connect()
        task = _share_task.options(
            _generator_backpressure_num_objects=self.max_in_flight,
            **self.options)
        generators: List[Any] = []
        try:
            for share in shares:
                generators.append(task.remote(share))
            items: Generator[Any, None, None]
            if self.ordered:
                items = plan.merge([
                    _receive(generator, index, count, self.timeout)
                    for index, generator in enumerate(generators)])
            else:
                items = _first_ready(generators, self.timeout)
            try:
                yield from islice(items, max_iter)
            finally:
                items.close()
        finally:
            _cancel(generators, self.timeout)
