"""Split a stream into disjoint shares, for parallel workers and ranks.

`shard` is the one split behind every parallel path (``ZMQStreamer``'s
worker pool, ``TorchDataset`` under a ``DataLoader``, ranks of a
distributed run); `merge_plan` tells the consumer how to merge the shares
back (`pescador._merge`).
"""

import copy
import inspect
import warnings
from collections.abc import Sequence
from typing import Any, Callable, Dict, Iterator, Optional

import numpy as np

from ._merge import MergePlan
from .core import Streamer
from .exceptions import PescadorError
from .util import _is_int

__all__ = ["shard"]

# The first word after the seed in a derived seed's entropy, so that the
# seeds of the shares and of the merge never coincide.
_SHARE, _MERGE = 0, 1


def shard(streamer: Streamer, index: int, count: int,
          epoch: int = 0) -> Streamer:
    """Share ``index`` of ``count`` disjoint shares of a stream.

    The outermost mux of the stream is split by its streamers: share
    ``index`` runs the mux over the streamers ``i`` with
    ``i % count == index`` (and their weights). The outermost mux is
    ``streamer`` itself if it is a mux, else the first mux found inside a
    plain `Streamer`: its source (``Streamer(mux)``) or one of its
    arguments (``Streamer(buffer_stream, mux, 16)``), searched depth first.
    The Streamers around it are copied, so a map such as `buffer_stream`
    runs on the share only: its batches hold items of one share.

    Every seeded mux of the share (the outermost one and each one nested in
    its streamers, at any depth) gets its own new seed, derived from its
    seed, ``index`` and ``epoch``; so two epochs differ at every level, and
    the same ``(index, count, epoch)`` replays the same items. A mux on
    numpy's global generator (``random_state=None``) keeps it. A mux seeded
    with a ``RandomState`` or ``Generator`` is derived from the state it
    has at the time of the split.

    Parameters
    ----------
    streamer : Streamer or mux
    index : int, 0 <= index < count
    count : int > 0
    epoch : int >= 0
        Mixed into the derived seeds, so that each epoch differs.

    Returns
    -------
    Streamer
        A new Streamer; ``streamer`` itself when ``count == 1`` and
        ``epoch == 0``. With more shares than streamers, the extra shares
        (and any share whose streamers all have weight 0) are empty: they
        end at once.

    Raises
    ------
    PescadorError
        If ``index``, ``count`` or ``epoch`` is invalid, or, with
        ``count > 1``, if the stream cannot be split: it has no mux (every
        share would be the whole stream), or its outermost mux takes its
        streamers from a lazy source (a generator, a generator function or
        a Streamer of streamers), whose streamers cannot be dealt out
        without creating them all.

    See Also
    --------
    merge_plan : how to merge the shares back into one stream.

    Examples
    --------
    >>> import pescador
    >>> mux = pescador.ChainMux([pescador.Streamer('ab'),
    ...                          pescador.Streamer('cd'),
    ...                          pescador.Streamer('ef')])
    >>> [''.join(pescador.shard(mux, i, 2)) for i in range(2)]
    ['abef', 'cd']
    >>> list(pescador.shard(mux, 3, 4))
    []
    >>> batches = pescador.Streamer(pescador.tuples, mux, 'x')
    >>> pescador.shard(batches, 1, 2).args[0].streamers == [mux.streamers[1]]
    True
    >>> pescador.shard(pescador.Streamer('xyz'), 1, 2)
    Traceback (most recent call last):
    ...
    pescador.exceptions.PescadorError: shard: no mux to split: every share \
would be the whole stream, so 2 workers would each yield all of it; make \
its source a mux (e.g. a ChainMux of one Streamer per file) or use count=1
    """
    _check_share(index, count)
    epoch = check_epoch(epoch, "shard")
    if count == 1 and epoch == 0:
        return streamer
    outer = _splittable_mux(streamer, count)
    if outer is None:
        return streamer
    memo: Dict[int, Any] = {}
    return _replace(streamer, outer,
                    _reseeded(outer, index, epoch, memo,
                              part=slice(index, None, count)))


def merge_plan(streamer: Streamer, count: int, epoch: int = 0) -> MergePlan:
    """How to merge the ``count`` shares of ``shard(streamer, i, count,
    epoch)`` back into one stream.

    - A random outermost mux (`StochasticMux`, `ShuffledMux`, `Mux`) merges
      at random: each item comes from share ``i`` with probability equal to
      its total weight (the sum of its streamers' normalised weights;
      uniform for a mux without weights), from a generator seeded with a
      seed derived from the mux's seed and ``epoch`` (``None`` for an
      unseeded mux: fresh entropy).
    - Any other mux (`ChainMux`, `RoundRobinMux`) merges round-robin.

    Parameters
    ----------
    streamer : Streamer or mux
    count : int > 0
    epoch : int >= 0

    Returns
    -------
    MergePlan
        ``weights`` is ``None`` for a round-robin merge (and when
        ``count == 1`` and the stream cannot be split).

    Raises
    ------
    PescadorError
        As `shard` does, for an invalid ``count`` or ``epoch`` or, with
        ``count > 1``, a stream that cannot be split.

    Examples
    --------
    >>> import pescador
    >>> from pescador.split import merge_plan
    >>> mux = pescador.ShuffledMux(['a', 'b', 'c'], weights=[2, 1, 1],
    ...                            random_state=0)
    >>> plan = merge_plan(mux, 2)
    >>> plan.weights
    (0.75, 0.25)
    >>> plan.seed == merge_plan(mux, 2).seed != merge_plan(mux, 2, 1).seed
    True
    >>> merge_plan(pescador.ChainMux(['ab', 'cd']), 2)
    MergePlan(count=2, weights=None, seed=None)
    """
    _check_share(0, count, "merge_plan")
    epoch = check_epoch(epoch, "merge_plan")
    outer = _splittable_mux(streamer, count, "merge_plan")
    if outer is None or not isinstance(outer, _weighted_muxes()):
        return MergePlan(count, None, None)
    weights = np.asarray(outer.weights, dtype=float)
    weights = weights / weights.sum()
    return MergePlan(
        count, tuple(float(weights[i::count].sum()) for i in range(count)),
        _derive_seed(outer.random_state, _MERGE, 0, epoch))


class EpochStreamer(Streamer):
    """The base of the parallel executors (`ZMQStreamer`, `RayStreamer`):
    each activation runs the shares at the current ``epoch`` and counts it
    up on the original, so epochs differ, and a deep copy made before
    iterating replays them. A subclass sets ``self.epoch = 0`` and defines
    ``_source(max_iter)``, which may stop its shares at ``max_iter``. To
    checkpoint, it also defines ``_state(pulled)`` (its activation's state,
    JSON types, holding the epoch) and ``_resume(state, max_iter)`` (the
    items continuing from it, after setting ``self.epoch`` to the state's);
    the epochs after a resumed one continue from it. Without them,
    `pescador.get_state` of a started iteration, and resuming, raise
    `PescadorError` ("... cannot checkpoint yet"): `RayStreamer` is so.

    Examples
    --------
    >>> import pescador
    >>> from pescador.split import EpochStreamer
    >>> class Epochs(EpochStreamer):
    ...     def __init__(self, streamer):
    ...         super().__init__(streamer)
    ...         self.epoch = 0
    ...     def _source(self, max_iter=None):
    ...         yield from shard(self.streamer, 0, 1, epoch=self.epoch)
    >>> stream = Epochs(pescador.ShuffledMux(['ab', 'cd'], random_state=0))
    >>> first, second = list(stream(max_iter=6)), list(stream(max_iter=6))
    >>> first != second, stream.epoch
    (True, 2)
    """

    epoch: int

    def _activate(self) -> "EpochStreamer":
        active = super()._activate()  # a deep copy: it keeps this epoch
        self.epoch += 1
        return active

    def _enter(self, state: Optional[Dict[str, Any]] = None,
               max_iter: Optional[int] = None) -> "EpochStreamer":
        active = self._activate()
        if state is None:
            active.stream_ = active._source(max_iter)
        else:
            active.stream_ = active._resume(state, max_iter)
            self._resumed(active)
        self.active += 1
        return active

    def _final_state(self) -> Optional[Dict[str, Any]]:
        return {"epoch": self.epoch}

    def _next_state(self) -> Optional[Dict[str, Any]]:
        return {"next_epoch": self.epoch}

    def _restore_epochs(self, state: Optional[Dict[str, Any]]) -> None:
        # Before an iteration: it runs that epoch. At the end of one (or at
        # max_iter): the next iteration runs the epoch after it.
        if isinstance(state, dict) and _is_int(state.get("next_epoch")):
            self.epoch = state["next_epoch"]
        elif isinstance(state, dict) and _is_int(state.get("epoch")):
            self.epoch = state["epoch"] + 1

    def _resumed(self, active: "EpochStreamer") -> None:
        # The resumed activation runs the state's epoch (its `_resume` set
        # it); the epochs after it continue from there.
        self.epoch = active.epoch + 1

    def _state(self, pulled: int) -> Dict[str, Any]:
        """The state of this activation, with its ``epoch``; a subclass
        that can checkpoint overrides it and `_resume`."""
        raise PescadorError(
            "{} cannot checkpoint yet: pescador.get_state of its iterations "
            "is not supported (ZMQStreamer's is)".format(type(self).__name__))

    def _resume(self, state: Dict[str, Any],
                max_iter: Optional[int] = None) -> Iterator[Any]:
        """The items of an activation continuing from ``state`` (what
        `_state` returned), setting ``self.epoch`` to the state's."""
        raise PescadorError(
            "{} cannot checkpoint yet: it cannot resume from a state "
            "(ZMQStreamer can)".format(type(self).__name__))

    def _source(self, max_iter: Optional[int] = None) -> Iterator[Any]:
        """The items of this activation: the shares at ``self.epoch``."""
        raise NotImplementedError


def check_epoch(epoch: int, name: str) -> int:
    """Return ``epoch`` as an int, or raise `PescadorError` for ``name``.

    Examples
    --------
    >>> from pescador.split import check_epoch
    >>> check_epoch(3, 'shard')
    3
    >>> check_epoch(-1, 'shard')
    Traceback (most recent call last):
    ...
    pescador.exceptions.PescadorError: shard: invalid epoch=-1: expected an \
int >= 0
    """
    if not (_is_int(epoch) and epoch >= 0):
        raise PescadorError(
            "{}: invalid epoch={!r}: expected an int >= 0".format(name, epoch))
    return int(epoch)


def mux_size(streamer: Streamer) -> Optional[int]:
    """The number of streamers of the outermost mux; None without a mux or
    when its streamers come from a lazy source.

    Examples
    --------
    >>> import pescador
    >>> from pescador.split import mux_size
    >>> mux = pescador.ChainMux([pescador.Streamer('ab')] * 3)
    >>> mux_size(pescador.Streamer(pescador.tuples, mux, 'x'))
    3
    >>> mux_size(pescador.Streamer('ab')) is None
    True
    """
    outer = _outer_mux(streamer)
    streamers = None if outer is None else _streamers(outer)
    return None if streamers is None else len(streamers)


def split_count(total: Optional[int], index: int,
                count: int) -> Optional[int]:
    """Share ``index`` of ``total`` items split as evenly as possible.

    Examples
    --------
    >>> from pescador.split import split_count
    >>> [split_count(10, i, 3) for i in range(3)]
    [4, 3, 3]
    >>> split_count(None, 0, 3) is None
    True
    """
    if total is None:
        return None
    return total // count + (index < total % count)


# -- finding and checking the outermost mux ---------------------------------

def _check_share(index, count, name="shard"):
    if not (_is_int(count) and count > 0 and _is_int(index)
            and 0 <= index < count):
        raise PescadorError(
            "{}: invalid index={!r}, count={!r}: expected ints with "
            "0 <= index < count".format(name, index, count))


def _is_mux(streamer):
    from .mux import BaseMux
    return isinstance(streamer, BaseMux)


def _weighted_muxes():
    from .mux import ShuffledMux, StochasticMux
    return (StochasticMux, ShuffledMux)


def _streamers(mux):
    """The mux's streamers as a list, or None for a lazy source."""
    streamers = mux.streamers
    return list(streamers) if isinstance(streamers, Sequence) else None


def _children(streamer):
    """The Streamers a plain Streamer is built from: source, args, kwargs."""
    values = (streamer.streamer,) + streamer.args + tuple(
        streamer.kwargs.values())
    return [value for value in values if isinstance(value, Streamer)]


def _outer_mux(streamer):
    """The outermost mux of a stream (depth first), or None."""
    if _is_mux(streamer):
        return streamer
    if isinstance(streamer, Streamer):
        for child in _children(streamer):
            mux = _outer_mux(child)
            if mux is not None:
                return mux
    return None


def _splittable_mux(streamer, count, name="shard"):
    """The outermost mux, or `PescadorError` if ``count > 1`` shares of the
    stream cannot be made; None (for ``count == 1``) without a mux."""
    outer = _outer_mux(streamer)
    if count == 1:
        return outer
    if outer is None:
        raise PescadorError(
            "{}: no mux to split: every share would be the whole stream, so "
            "{} workers would each yield all of it; make its source a mux "
            "(e.g. a ChainMux of one Streamer per file) or use "
            "count=1".format(name, count))
    if _streamers(outer) is None:
        raise PescadorError(
            "{}: cannot split {} over a lazy source of streamers ({}): a "
            "share cannot take its own streamers without creating all of "
            "them; give the mux a list of streamers, or use count=1".format(
                name, type(outer).__name__, type(outer.streamers).__name__))
    return outer


# -- rebuilding --------------------------------------------------------------

def _with_children(streamer, change: Callable[[Streamer], Streamer]):
    """A shallow copy of the plain Streamer ``streamer`` whose Streamer
    source, args and kwargs are replaced by ``change(child)``; ``streamer``
    itself when nothing changed."""
    def swap(value):
        return change(value) if isinstance(value, Streamer) else value

    source = swap(streamer.streamer)
    args = tuple(swap(arg) for arg in streamer.args)
    kwargs = {key: swap(value) for key, value in streamer.kwargs.items()}
    if source is streamer.streamer and all(
            new is old for new, old in zip(args, streamer.args)) and all(
            kwargs[key] is value for key, value in streamer.kwargs.items()):
        return streamer
    clone = copy.copy(streamer)
    clone.streamer, clone.args, clone.kwargs = source, args, kwargs
    return clone


def _replace(streamer, old, new):
    """``streamer`` with ``old`` replaced by ``new``, copying only the plain
    Streamers on the way to it."""
    if streamer is old:
        return new
    if _is_mux(streamer) or not isinstance(streamer, Streamer):
        return streamer
    return _with_children(streamer, lambda child: _replace(child, old, new))


def _reseeded(streamer, index, epoch, memo, part=slice(None)):
    """``streamer`` with every seeded mux in it given a seed derived from
    its own, ``index`` and ``epoch``; only a mux's streamers in ``part``
    are kept (its share). Unchanged parts are shared, not copied."""
    key = (id(streamer), part.start, part.stop, part.step)
    if key not in memo:
        memo[key] = _reseed_one(streamer, index, epoch, memo, part)
    return memo[key]


def _reseed_one(streamer, index, epoch, memo, part):
    if not _is_mux(streamer):
        if not isinstance(streamer, Streamer):
            return streamer
        return _with_children(
            streamer, lambda child: _reseeded(child, index, epoch, memo))
    mux = streamer
    weights = getattr(mux, "weights", None)
    streamers = _streamers(mux)
    if streamers is None:
        # A lazy source: its streamers are only known by running it.
        children = mux.streamers
        changed = False
    else:
        kept = streamers[part]
        children = [_reseeded(child, index, epoch, memo) for child in kept]
        changed = len(kept) != len(streamers) or any(
            new is not old for new, old in zip(children, kept))
        if weights is not None:
            weights = np.asarray(weights, dtype=float)[part]
            if not weights.any():
                children = []
        if not children:
            return Streamer([])
    if mux.random_state is None and not changed:
        return mux
    return _rebuild(mux, children, weights,
                    _derive_seed(mux.random_state, _SHARE, index, epoch))


def _rebuild(mux, streamers, weights, random_state):
    """A new mux of the same class and parameters over ``streamers``."""
    params = inspect.signature(type(mux)).parameters
    kwargs = {name: getattr(mux, name) for name in params
              if name != "streamers" and hasattr(mux, name)}
    if weights is not None:
        kwargs["weights"] = weights
    kwargs["random_state"] = random_state
    with warnings.catch_warnings():
        # The user was warned when building a deprecated `Mux`; a share of
        # it is our doing.
        warnings.simplefilter("ignore", DeprecationWarning)
        return type(mux)(streamers, **kwargs)


def _derive_seed(random_state, kind, index, epoch):
    """A seed drawn from a mux's ``random_state``, ``kind`` (a share or the
    merge), ``index`` and ``epoch``; None for an unseeded mux."""
    if random_state is None:
        return None
    # Draw from a copy: the mux's own generator must not move.
    if isinstance(random_state, np.random.Generator):
        random_state = copy.deepcopy(random_state).integers(2**32)
    elif isinstance(random_state, np.random.RandomState):
        random_state = copy.deepcopy(random_state).randint(2**32)
    entropy = [int(random_state), kind, int(index), int(epoch)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])
