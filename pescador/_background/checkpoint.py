"""What a ZMQStreamer consumer has received: its checkpoint, and resuming.

The workers run ahead of the consumer (up to the high-water marks), so
their own position is not the consumer's. Each worker sends, in order with
its items, a snapshot of its share's state every so often ("after my item
``c``, my share's state was ``S``": `pescador._background.worker`). The
consumer keeps, per worker, the latest snapshot it has read and how many
items it has received: its position in that share is "``S``, then skip the
items received since". A ZMQStreamer's state is that per worker, the
merge's own position, and the epoch::

    {"epoch": int, "n_workers": int, "ordered": bool,
     "workers": [{"state": share state or None, "skip": int,
                  "ended": bool}, ...],
     "merge": merge position or None}

Resuming, worker ``i`` continues its share from ``S`` and skips those
items without sending them (at most a snapshot's worth, plus what ``S``
itself re-runs); a worker whose end the consumer had seen sends its end at
once; the merge continues from its position.
"""

import copy
from typing import Any, Dict, List, Optional

from ..exceptions import PescadorError
from ..state import check_keys, get_state, mismatch

__all__ = ["Progress", "Received", "check_state"]


class Received:
    """What the consumer has received from one worker.

    ``count`` items since this iteration started; ``state`` is the share's
    state after item ``at`` of them (``at`` is negative when the worker
    still had to skip items resuming, ``state`` None for the share's start).
    """

    __slots__ = ("state", "at", "count", "ended", "error")

    def __init__(self, state: Optional[Dict[str, Any]] = None, skip: int = 0,
                 ended: bool = False) -> None:
        self.state, self.at, self.count = state, -skip, 0
        self.ended = ended
        self.error: Optional[str] = None

    def snapshot(self, body: Dict[str, Any]) -> None:
        """Record a snapshot message (it follows item ``body['count']``,
        so the consumer has received exactly that many)."""
        if "error" in body:
            self.error = body["error"]
        else:
            self.state, self.at = body["state"], body["count"]

    def position(self, index: int) -> Dict[str, Any]:
        if self.error is not None:
            raise PescadorError(
                "ZMQStreamer cannot checkpoint: the share of worker {} "
                "cannot ({})".format(index, self.error))
        # A copy: the caller may change what it gets.
        return {"state": copy.deepcopy(self.state),
                "skip": self.count - self.at, "ended": self.ended}


class Progress:
    """The position of one ZMQStreamer iteration, as the consumer sees it:
    the epoch, what it received from each worker, and the merge (the
    ``merge`` generator, registered with `pescador.get_state`, if any)."""

    def __init__(self, epoch: int, ordered: bool,
                 received: List[Received]) -> None:
        self.epoch, self.ordered, self.received = epoch, ordered, received
        self.merge: Any = None

    def state(self) -> Dict[str, Any]:
        return {"epoch": self.epoch, "n_workers": len(self.received),
                "ordered": self.ordered,
                "workers": [share.position(index) for index, share
                            in enumerate(self.received)],
                "merge": None if self.merge is None
                else get_state(self.merge)}


def check_state(state: Any, n_workers: int,
                ordered: bool) -> Dict[str, Any]:
    """``state`` if it fits a ZMQStreamer with ``n_workers`` and
    ``ordered``; else `PescadorError` saying what differs."""
    what = "ZMQStreamer"
    check_keys(state, ("epoch", "n_workers", "ordered", "workers", "merge"),
               what)
    for name, expected in [("n_workers", n_workers), ("ordered", ordered)]:
        if state[name] != expected:
            raise mismatch("a ZMQStreamer with " + name, expected,
                           state[name])
    epoch = state["epoch"]
    workers = state["workers"]
    if not (isinstance(epoch, int) and epoch >= 0
            and isinstance(workers, list) and len(workers) == n_workers):
        raise PescadorError(
            "Invalid state for ZMQStreamer: expected an epoch >= 0 and one "
            "entry per worker ({}); got epoch {!r} and {!r}".format(
                n_workers, epoch, workers))
    for worker in workers:
        check_keys(worker, ("state", "skip", "ended"), what + " worker")
        if not (isinstance(worker["skip"], int) and worker["skip"] >= 0
                and isinstance(worker["ended"], bool)):
            raise PescadorError(
                "Invalid state for a ZMQStreamer worker: expected skip, an "
                "int >= 0, and ended, a bool; got {!r}".format(worker))
    if (state["merge"] is None) != (not ordered or n_workers == 1):
        raise mismatch("a ZMQStreamer with a merge state", "one"
                       if ordered and n_workers > 1 else "none",
                       "none" if state["merge"] is None else "one")
    return state
