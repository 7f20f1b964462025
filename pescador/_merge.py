"""Merge the shares of a split stream back into one stream.

The merge only *pulls*: it asks share ``i`` for its next item when its
policy picks ``i``, and never looks at which share is ready first. So the
merged order depends only on the plan and on the items each share yields,
never on timing: an executor (ZMQStreamer's worker pool, Ray) passes one
"receive the next item of worker ``i``" iterator per share, and the merge is
the same as over the shares run in-process.

``ordered=False`` executors do not use this module: they yield whatever item
arrives first (for ZMQ, a poll over the workers' sockets) and end when
every worker has ended.

A merge can checkpoint: `pescador.get_state` of the generator `merge`
returns its position (the shares still pulled, in the order of the
rotation, and for a weighted merge the generator's state at the start of
the current block of draws and how many of them were used), and
``merge(..., state=...)`` continues from it, given shares that continue
from the same point.
"""

from dataclasses import dataclass
from itertools import compress, cycle, repeat
from operator import length_hint
from typing import (
    Any, Dict, Generator, Iterable, Iterator, List, Optional, Sequence,
    Tuple, TypeVar)

import numpy as np

from ._mux_base import _BLOCK
from .exceptions import PescadorError
from .state import (BIG, check_fits, check_keys, counted, decode_rng, encode_rng_state,
                    mismatch, register, skip)

__all__ = ["MergePlan", "merge"]

T = TypeVar("T")


@dataclass(frozen=True)
class MergePlan:
    """How to merge ``count`` shares: see `pescador.split.merge_plan`.

    Attributes
    ----------
    count : int
        The number of shares.
    weights : None or tuple of float
        ``None``: round-robin. Else each share's total weight (they sum
        to 1): the merge is random, weighted.
    seed : None or int
        Seeds the weighted merge's generator; ``None``: fresh entropy.

    Examples
    --------
    >>> from pescador._merge import MergePlan
    >>> plan = MergePlan(2, (0.75, 0.25), seed=1)
    >>> ''.join(plan.merge([iter('a' * 20), iter('b' * 20)]))[:12]
    'ababaabaaaba'
    """

    count: int
    weights: Optional[Tuple[float, ...]]
    seed: Optional[int]

    def merge(self, shares: Sequence[Iterable[T]],
              state: Optional[Dict[str, Any]] = None
              ) -> Generator[T, None, None]:
        """`merge` the ``count`` ``shares`` by this plan (continuing from
        ``state``, if given).

        Examples
        --------
        >>> from pescador._merge import MergePlan
        >>> list(MergePlan(2, None, None).merge(['abc', 'x']))
        ['a', 'x', 'b', 'c']
        """
        if len(shares) != self.count:
            raise PescadorError(
                "merge: {} shares for a plan of {}".format(
                    len(shares), self.count))
        return merge(shares, self.weights, self.seed, state)


def merge(shares: Sequence[Iterable[T]],
          weights: Optional[Sequence[float]] = None,
          seed: Optional[int] = None,
          state: Optional[Dict[str, Any]] = None
          ) -> Generator[T, None, None]:
    """Merge ``shares`` into one stream, pulling from one share at a time.

    - ``weights=None``: round-robin, one item from each share in turn,
      skipping the shares that have ended.
    - else each next item comes from share ``i`` with probability
      ``weights[i]`` over the total weight of the shares still running; a
      share that ends is dropped (the item then comes from a new draw
      among the others). Draws come from a generator seeded with ``seed``,
      in blocks; so the long-run share of ``i`` is its weight exactly, and
      with a seed the merged order is the same at every run. A share of
      weight 0 is never pulled.

    The merge ends when every share it pulls from has ended; it then (or
    when it is closed early) closes every share that has a ``close``.

    Parameters
    ----------
    shares : sequence of iterables
        One per share; each is iterated once.
    weights : None or sequence of float, one per share
        Non-negative, at least one positive (they need not sum to 1).
    seed : None or int
        ``None``: fresh entropy from the operating system.
    state : None or dict
        What `pescador.get_state` returned for a merge of as many shares,
        with the same weights: continue from there. Each share must
        continue from where the consumer of that merge had taken it.

    Returns
    -------
    iterator
        A generator of the shares' items, known to `pescador.get_state`.

    Raises
    ------
    PescadorError
        At once, if ``weights`` does not fit ``shares``, or ``state`` does
        not fit the merge.

    Examples
    --------
    >>> from pescador._merge import merge
    >>> ''.join(merge(['abc', 'xy', '1']))
    'ax1byc'
    >>> out = ''.join(merge(['a' * 40, 'b' * 10], weights=[0.8, 0.2], seed=0))
    >>> out == ''.join(merge(['a' * 40, 'b' * 10], [0.8, 0.2], seed=0))
    True
    >>> sorted(out) == sorted('a' * 40 + 'b' * 10)
    True

    Resuming, with each share continuing where the merge left it:

    >>> import pescador
    >>> shares = [iter('abc'), iter('xy'), iter('1')]
    >>> merged = merge(shares)
    >>> ''.join(next(merged) for _ in range(4))
    'ax1b'
    >>> state = pescador.get_state(merged)
    >>> state
    {'weighted': False, 'count': 3, 'live': [1, 2, 0], 'used': 0, 'rng': None}
    >>> ''.join(merge(shares, state=state))
    'yc'
    """
    iterators = [iter(share) for share in shares]
    if weights is not None:
        weights = _check_weights(weights, len(iterators))
    position = _Position(len(iterators), weights)
    rng = None
    if weights is not None and len(iterators) > 1:
        rng = np.random.default_rng(seed)
    if state is not None:
        position.restore(state, rng)
    return register(_merged(iterators, weights, rng, position),
                    position.state)


class _Position:
    """Where a merge is: what `pescador.get_state` reads off it.

    ``live`` lists the shares still pulled, in the order of the rotation
    from where the current round started; ``rotation`` counts the pulls of
    that round, so that the share pulled next is derived, not stored per
    item. A weighted merge draws blocks of `_BLOCK` shares: ``block`` is its
    generator's state before the current block, ``used`` the draws of it
    used before ``draws`` (the iterator over the rest of the block, whose
    remaining length tells how many more are).
    """

    __slots__ = ("count", "weighted", "live", "rotation", "block", "used",
                 "draws")

    def __init__(self, count: int, weights: Optional[List[float]]) -> None:
        self.count = count
        self.weighted = weights is not None
        self.live = list(range(count)) if weights is None else [
            k for k, weight in enumerate(weights) if weight > 0]
        self.rotation: Any = None   # a repeat counter, during a round
        self.block: Any = None      # a bit generator's state dict
        self.used = 0
        self.draws: Any = None      # an iterator over the block's draws

    def state(self) -> Dict[str, Any]:
        live = self.live
        if self.rotation is not None:
            at = counted(self.rotation) % len(live)
            live = live[at:] + live[:at]
        used = self.used
        if self.draws is not None:
            used = _BLOCK - length_hint(self.draws)
        return {"weighted": self.weighted, "count": self.count,
                "live": live, "used": used,
                "rng": None if self.block is None
                else encode_rng_state(self.block)}

    def restore(self, state: Dict[str, Any],
                rng: Optional[np.random.Generator]) -> None:
        check_keys(state, ("weighted", "count", "live", "rng", "used"),
                   "a merge")
        check_fits(("a merge of shares", self.count, state["count"]),
                   ("a weighted merge (True) or round-robin (False)",
                    self.weighted, state["weighted"]))
        live = state["live"]
        if not (isinstance(live, list) and set(live) <= set(self.live)
                and len(set(live)) == len(live)):
            raise mismatch("a merge pulling from shares", self.live, live)
        self.live = list(live)
        used = state["used"]
        if not (isinstance(used, int) and 0 <= used <= _BLOCK):
            raise mismatch("a merge with draws used",
                           "0 to {}".format(_BLOCK), used)
        self.used = used
        if rng is not None and state["rng"] is not None:
            decode_rng(rng, state["rng"], "the merge")
            self.block = rng.bit_generator.state


def _merged(iterators: List[Iterator[T]], weights: Optional[List[float]],
            rng: Optional[np.random.Generator],
            position: _Position) -> Generator[T, None, None]:
    try:
        if rng is None or len(position.live) == 1:
            yield from _round_robin(iterators, position)
        else:
            assert weights is not None  # rng is made for weights only
            yield from _weighted(iterators, weights, rng, position)
    finally:
        for iterator in iterators:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
def _check_weights(weights: Sequence[float], n: int) -> List[float]:
    values = np.asarray(weights, dtype=float)
    if not (values.shape == (n,) and np.isfinite(values).all()
            and (values >= 0).all() and (values.sum() > 0 or n == 0)):
        raise PescadorError(
            "merge: invalid weights={!r}: expected {} non-negative finite "
            "numbers, one per share, at least one positive".format(
                weights, n))
    return values.tolist()


def _round_robin(iterators: List[Iterator[T]],
                 position: _Position) -> Iterator[T]:
    """One item from each share in turn, in C (the itertools "roundrobin"
    recipe); a share that ends is dropped, and the round goes on from the
    one after it. Also the last share of a weighted merge, which needs no
    draw."""
    live = position.live
    while live:
        position.rotation = rotation = repeat(True, BIG)
        yield from map(next, compress(cycle([iterators[k] for k in live]),
                                      rotation))
        # The rotation counted the pull that found the share's end too.
        ended = (counted(rotation) - 1) % len(live)
        live[:] = live[ended + 1:] + live[:ended]
    position.rotation = None


def _weighted(iterators: List[Iterator[T]], weights: List[float],
              rng: np.random.Generator, position: _Position) -> Iterator[T]:
    live = position.live
    while len(live) > 1:
        nexts = [iterators[k].__next__ for k in live]
        cumulative = np.cumsum([weights[k] for k in live])
        # Share k is drawn for a uniform u in [bounds[k-1], bounds[k]).
        bounds = cumulative[:-1] / cumulative[-1]
        ended = None
        while ended is None:
            if position.block is None:  # a new block (else resumed)
                position.block = rng.bit_generator.state
                position.used = 0
            draws = iter(np.searchsorted(bounds, rng.random(_BLOCK),
                                         "right").tolist())
            position.draws = skip(draws, position.used, "a block of draws")
            for k in draws:
                try:
                    item = nexts[k]()
                except StopIteration:
                    ended = k
                    break
                yield item
            position.block = position.draws = None
        # Renormalise over the shares still running; the rest of the block
        # of draws is dropped, which keeps the order reproducible.
        del live[ended]
    position.block, position.used = None, 0
    # No draw is needed for the last share.
    yield from _round_robin(iterators, position)
