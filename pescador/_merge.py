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
"""

from dataclasses import dataclass
from itertools import cycle, islice
from typing import (
    Any, Generator, Iterable, Iterator, List, Optional, Sequence, Tuple,
    TypeVar)

import numpy as np

from ._mux_base import _BLOCK
from .exceptions import PescadorError

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

    def merge(self, shares: Sequence[Iterable[T]]
              ) -> Generator[T, None, None]:
        """`merge` the ``count`` ``shares`` by this plan.

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
        return merge(shares, self.weights, self.seed)


def merge(shares: Sequence[Iterable[T]],
          weights: Optional[Sequence[float]] = None,
          seed: Optional[int] = None) -> Generator[T, None, None]:
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

    Returns
    -------
    iterator
        A generator of the shares' items.

    Raises
    ------
    PescadorError
        At once, if ``weights`` does not fit ``shares``.

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
    """
    iterators = [iter(share) for share in shares]
    if weights is not None:
        weights = _check_weights(weights, len(iterators))
    return _merged(iterators, weights, seed)


def _merged(iterators: List[Iterator[T]], weights: Optional[List[float]],
            seed: Optional[int]) -> Generator[T, None, None]:
    try:
        if len(iterators) == 1:
            if weights is None or weights[0] > 0:
                yield from iterators[0]
        elif weights is None:
            yield from _round_robin(iterators)
        else:
            yield from _weighted(iterators, weights,
                                 np.random.default_rng(seed))
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


def _round_robin(iterators: List[Iterator[Any]]) -> Iterator[Any]:
    # The itertools "roundrobin" recipe: `map` stops at the first share
    # that ends; the cycle has already moved past it, so the next round
    # keeps the others in their order.
    rotation: Iterator[Iterator[Any]] = iter(iterators)
    for live in range(len(iterators), 0, -1):
        rotation = cycle(islice(rotation, live))
        yield from map(next, rotation)


def _weighted(iterators: List[Iterator[Any]], weights: List[float],
              rng: np.random.Generator) -> Iterator[Any]:
    live = [k for k, weight in enumerate(weights) if weight > 0]
    while len(live) > 1:
        nexts = [iterators[k].__next__ for k in live]
        cumulative = np.cumsum([weights[k] for k in live])
        # Share k is drawn for a uniform u in [bounds[k-1], bounds[k]).
        bounds = cumulative[:-1] / cumulative[-1]
        ended = None
        while ended is None:
            draws = np.searchsorted(bounds, rng.random(_BLOCK), "right")
            for k in draws.tolist():
                try:
                    item = nexts[k]()
                except StopIteration:
                    ended = k
                    break
                yield item
        # Renormalise over the shares still running; the rest of the block
        # of draws is dropped, which keeps the order reproducible.
        del live[ended]
    if live:
        # No draw is needed for the last share.
        yield from iterators[live[0]]
