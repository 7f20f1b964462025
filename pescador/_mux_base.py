"""The base of the muxes: validation, activation and the per-item loop.

`BaseMux` (re-exported by `pescador.mux`) owns everything the muxes share;
the muxes themselves, in `pescador.mux`, state only their policy.
"""

import inspect
import logging
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain, islice
from typing import (Any, Callable, Dict, Iterable as TypingIterable, List,
                    Optional, Tuple)

import numpy as np

from .core import Streamer
from .exceptions import PescadorError
from .util import RandomStateLike, _is_number, get_rng

__all__ = ["BaseMux"]

# One logger for the whole mux family, under the name users know.
_logger = logging.getLogger("pescador.mux")

# Random numbers are drawn from numpy this many at a time, so that the
# per-item loop never calls numpy.
_BLOCK = 1024
# Rejected pool draws (streamer busy) tried before an exact numpy draw.
_TRIES = 32
# The `next` of an empty slot: always raises StopIteration.
_DRY = iter(()).__next__


# -- validation ------------------------------------------------------------

def _as_streamer(element, index):
    if isinstance(element, Streamer):
        return element
    if isinstance(element, Iterable):
        return Streamer(element)
    raise PescadorError(
        "Invalid streamers[{}]={!r} ({}): expected a Streamer or an iterable;"
        " wrap a generator function as Streamer(func, *args)".format(
            index, element, type(element).__name__))


def _check_streamers(streamers, allow_empty=False):
    if (isinstance(streamers, (Streamer, Mapping, str, bytes))
            or not isinstance(streamers, Iterable)):
        raise PescadorError(
            "Invalid streamers={!r} ({}): expected a list of Streamers or "
            "iterables".format(streamers, type(streamers).__name__))
    result = [_as_streamer(s, i) for i, s in enumerate(streamers)]
    if not result and not allow_empty:
        raise PescadorError(
            "Invalid streamers=[] (empty): expected at least one streamer")
    return result


def _check_weights(weights, n):
    if weights is None:
        return np.full(n, 1.0 / n)
    problem = None
    values = np.asarray(weights) if isinstance(weights, Iterable) else None
    if values is None or values.dtype.kind not in "iuf":
        # np.asarray(['1', '2'], dtype=float) would parse strings.
        problem = "not numbers"
    else:
        values = values.astype(float)
        if values.shape != (n,):
            problem = "shape {}, not ({},)".format(values.shape, n)
        elif not np.isfinite(values).all():
            problem = "not all finite"
        elif (values < 0).any():
            problem = "negative"
        elif not values.any():
            problem = "all zero"
    if problem or values is None:     # (values is None only with a problem)
        raise PescadorError(
            "Invalid weights={!r} ({}): expected {} non-negative numbers, one"
            " per streamer, at least one positive".format(weights, problem, n))
    # Scaled by the largest first, so that the sum of huge weights (such
    # as 1e308 twice) cannot overflow.
    values = values / values.max()
    return values / values.sum()


def _check_rate(rate):
    if rate is None or (_is_number(rate) and 0 <= rate < float("inf")):
        return rate
    raise PescadorError(
        "Invalid rate={!r} ({}): expected None or a non-negative finite "
        "number".format(rate, type(rate).__name__))


def _weighted_indices(rng, weights, size):
    """``size`` indices drawn with probability proportional to ``weights``
    (non-negative, not all zero), as a list of ints. An index of weight 0
    is never drawn: its interval of the cumulative sum is empty."""
    cumulative = np.cumsum(weights)
    uniforms = rng.random(size) * cumulative[-1]
    return np.searchsorted(cumulative[:-1], uniforms, side="right").tolist()


def _activation_source(streamer, parent):
    """The raw iterator of a new activation of ``streamer`` in a slot of
    the activated mux ``parent``."""
    if isinstance(streamer, BaseMux):
        return streamer._activate(parent)._source()
    if (type(streamer) is Streamer and not streamer.kwargs
            and inspect.isgeneratorfunction(streamer.streamer)):
        # Its activated copy would differ from it in nothing the generator
        # sees (args are shared, a function is not copied): skip the copy.
        return streamer.streamer(*streamer.args)
    return streamer._activate()._source()


def _name(streamer):
    """A short name of ``streamer`` for the log: never its arguments, which
    may be large."""
    if isinstance(streamer, BaseMux):
        return repr(streamer)
    source = streamer.streamer
    return "{}({})".format(type(streamer).__name__, getattr(
        source, "__qualname__", None) or type(source).__name__)


def _children(streamer):
    """The streamers a Streamer or mux opens, as far as they are known
    before it runs (a lazy source of streamers is not looked into)."""
    if isinstance(streamer, BaseMux):
        if isinstance(streamer.streamers, list):
            return streamer.streamers
        return ()
    if isinstance(streamer.streamer, Streamer):
        return (streamer.streamer,)
    return ()


def _seeds(top):
    """One seed per seeded mux in the tree of ``top``, drawn from its
    generator (which advances it), keyed by ``id``. Walks the tree without
    recursion, and raises `PescadorError` if a mux contains itself."""
    seeds, state, stack = {}, {}, []

    def enter(node):
        state[id(node)] = "open"
        if isinstance(node, BaseMux) and node.random_state is not None:
            seeds[id(node)] = _draw_seed(node.rng)
        stack.append((node, iter(_children(node))))

    enter(top)
    while stack:
        node, children = stack[-1]
        for child in children:
            seen = state.get(id(child))
            if seen is None:
                enter(child)
                break
            if seen == "open":
                raise PescadorError(
                    "{!r} contains itself (through {!r}): a mux cannot be "
                    "among its own streamers".format(top, node))
        else:
            state[id(node)] = "done"
            stack.pop()
    return seeds


def _draw_seed(rng):
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(2**63))
    return int(rng.randint(2**32, dtype=np.uint64))


def _seeded_rng(seed, path):
    """The generator of one activation: PCG64 from ``seed`` and the
    activation ``path`` (``()`` for the outermost activation). PCG64 is
    fast to seed and its state is two integers, small enough to go into a
    checkpoint (see `pescador.get_state`)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        seed, spawn_key=path)))


# -- the base --------------------------------------------------------------

class BaseMux(Streamer):
    """The shared base of the muxes.

    It validates ``streamers`` and ``random_state``, makes each activation
    an independent copy with its own random generator, and runs the
    per-item loop. A subclass supplies the policy through three methods:
    ``_start()`` opens the first slots (with ``_init_slots`` and
    ``_open``); ``_schedule()`` returns an iterable of slot numbers to take
    items from, or ``None`` when the mux is finished; ``_on_dry(k)``
    handles slot ``k`` running dry, returning True when the schedule must
    be renewed (it is asked for again) and False to go on, the item due
    from slot ``k`` then coming from whatever now fills it.

    Parameters
    ----------
    streamers : list of Streamer or iterable
        An element that is not a `Streamer` is wrapped as
        ``Streamer(element)``.
    random_state : None, int, np.random.RandomState or np.random.Generator
        ``None`` uses the global numpy generator. With a seed, each
        activation (epoch) derives its own generator from the mux's, so
        epochs differ, and a deep copy of the mux replays the same epochs.

    Attributes
    ----------
    streamers : list of Streamer
    random_state
        As given.
    rng : np.random.RandomState, np.random.Generator or module
        The generator that activations derive theirs from; with
        ``random_state=None``, the ``numpy.random`` module itself (as in
        pescador 2.0), which draws from numpy's global state.

    Raises
    ------
    PescadorError
        If ``streamers`` is empty or not a collection of iterables (a dict
        or a string is not taken for one), or ``random_state`` is of the
        wrong type; when iterated, if the mux contains itself.

    Notes
    -----
    An activation is a shallow copy: it shares the streamers, each of which
    a slot activates afresh when it opens it, so starting a mux costs the
    same at any depth of nesting. Nested muxes do use the Python stack on
    their first item (a few frames per level): about 240 levels work under
    the default recursion limit.

    Examples
    --------
    >>> import pescador
    >>> class UntilFirstEnds(pescador.BaseMux):
    ...     '''Strict rotation that stops when any streamer ends.'''
    ...     def _start(self):
    ...         self._init_slots(len(self.streamers))
    ...         for k, streamer in enumerate(self.streamers):
    ...             self._open(k, streamer)
    ...         self._done = False
    ...     def _schedule(self):
    ...         return None if self._done else range(len(self.streamers))
    ...     def _on_dry(self, k):
    ...         self._done = True
    ...         return True
    >>> mux = UntilFirstEnds(['abc', 'xy'])
    >>> ''.join(mux)
    'axbyc'
    >>> isinstance(mux, pescador.Streamer)
    True
    """

    # Set on an activated copy only (see `_activate`): the seed of each
    # seeded mux of the tree, the path of activation counts to this one,
    # and how many times each child mux has been opened from it.
    _seeds: Dict[int, int]
    _path: Tuple[int, ...]
    _opened: Dict[int, int]
    # Whether to log activations (debug): read once per activation of the
    # mux, so that a disabled log costs one attribute test per opened slot.
    _debug = False
    # The open slots: (streamer, its live iterator) or None; and the `next`
    # of each (an empty slot's always raises StopIteration).
    _slots: List[Optional[Tuple[Streamer, Iterator[Any]]]]
    _nexts: List[Callable[[], Any]]

    def __init__(self, streamers: TypingIterable[Any],
                 random_state: RandomStateLike = None) -> None:
        self.streamers = self._prepare_streamers(streamers)
        self.random_state = random_state
        # As in pescador 2.0, an unseeded mux's rng is the numpy.random
        # module itself, which draws from numpy's global state.
        self.rng = np.random if random_state is None else get_rng(
            random_state)
        super().__init__(self.streamers)

    def _prepare_streamers(self, streamers: Any) -> Any:
        """Validate ``streamers``; a hook for ChainMux's lazy sources."""
        return _check_streamers(streamers)

    def __repr__(self) -> str:
        return "{}(<{} streamers>)".format(
            type(self).__name__, len(self.streamers)
            if isinstance(self.streamers, list) else "lazy")

    # -- copies: the global generator and one-shot iterators are shared -----

    def __deepcopy__(self, memo):
        if self.random_state is None:
            memo.setdefault(id(self.rng), self.rng)
        if isinstance(self.streamers, Iterator):
            memo.setdefault(id(self.streamers), self.streamers)
        return super().__deepcopy__(memo)

    def __getstate__(self):
        state = super().__getstate__()
        if self.random_state is None:
            state["rng"] = None
        return state

    def __setstate__(self, state):
        if state["random_state"] is None:
            state["rng"] = np.random
        super().__setstate__(state)

    # -- activation: a shallow copy with its own generator -----------------

    def _activate(self, parent: Optional["BaseMux"] = None) -> "BaseMux":
        """The copy that one activation iterates.

        The copy shares the streamers, since a slot activates each afresh
        when it opens it: so an activation costs the same at any depth of
        nesting. What an activation owns is its generator. The outermost
        one (``parent`` None) draws one seed from each seeded mux of its
        tree (checking the tree for cycles on the way); a mux opened in a
        slot of the activated mux ``parent`` seeds its generator from that
        seed and the path of activation counts that leads to it. So two
        activations never share a generator, epochs differ, and a deep copy
        replays the same epochs.
        """
        active = self.__class__.__new__(self.__class__)
        active.__dict__.update(self.__dict__)
        active.active = 0
        active._activated_copy = True
        if parent is None:
            active._seeds, active._path = _seeds(self), ()
        else:
            count = parent._opened.get(id(self), 0)
            parent._opened[id(self)] = count + 1
            active._seeds = parent._seeds
            active._path = parent._path + (count,)
        active._opened = {}
        if self.random_state is not None:
            seed = active._seeds.get(id(self))
            if seed is None:    # reached through a lazy source of streamers
                seed = active._seeds[id(self)] = _draw_seed(self.rng)
            active.rng = _seeded_rng(seed, active._path)
        return active

    # -- slots: one open activation of a child streamer each -------------

    def _init_slots(self, n: int) -> None:
        self._slots = [None] * n
        self._nexts = [_DRY] * n

    def _open(self, k: int, streamer: Streamer,
              budget: Optional[int] = None) -> bool:
        """Activate ``streamer`` into slot ``k``, to give at most ``budget``
        items (``None``: all). Return False, leaving the slot empty, if it
        yields nothing."""
        self._close(k)
        source = _activation_source(streamer, self)
        streamer.active += 1
        self._slots[k] = (streamer, source)
        for first in source:
            break
        else:
            self._close(k)
            if self._debug:
                _logger.debug("%r: slot %d: %s yielded nothing", self, k,
                              _name(streamer))
            return False
        if self._debug:
            _logger.debug("%r: slot %d: activated %s (budget %s)", self, k,
                          _name(streamer),
                          "unlimited" if budget is None else budget)
        if budget is not None:
            source = islice(source, budget - 1)
        self._nexts[k] = chain((first,), source).__next__
        return True

    def _close(self, k: int) -> None:
        slot = self._slots[k]
        if slot is not None:
            self._slots[k] = None
            self._nexts[k] = _DRY
            slot[0].active -= 1
            close = getattr(slot[1], "close", None)
            if close is not None:
                close()

    # -- the loop ----------------------------------------------------------

    def _source(self):
        self._debug = _logger.isEnabledFor(logging.DEBUG)
        if self._debug:
            _logger.debug("%r: activation started (path %s)", self,
                          getattr(self, "_path", ()))
        self._init_slots(0)
        try:
            self._start()
            nexts = self._nexts
            schedule = self._schedule()
            while schedule is not None:
                for k in schedule:
                    try:
                        item = nexts[k]()
                    except StopIteration:
                        if self._on_dry(k):
                            break
                        # The draw goes to what now fills the slot, if any.
                        try:
                            item = nexts[k]()
                        except StopIteration:
                            continue
                    yield item
                schedule = self._schedule()
        finally:
            for k in range(len(self._slots)):
                self._close(k)
            if self._debug:
                _logger.debug("%r: activation closed", self)

    # -- the policy: the hooks a subclass defines ---------------------------

    def _start(self) -> None:
        """Hook: open the first slots, on the activated copy.

        Call ``self._init_slots(n)``, then ``self._open(k, streamer,
        budget)`` for the slots to fill; also set up the policy's own
        per-activation state here (never in ``__init__``, which is shared
        by every activation).
        """
        raise NotImplementedError

    def _schedule(self) -> Optional[TypingIterable[int]]:
        """Hook: an iterable of slot numbers to take the next items from, in
        order, or ``None`` when the mux is finished.

        Called again whenever the iterable ends or `_on_dry` asks for a new
        one. Draw random numbers for it in blocks: the loop itself never
        calls numpy.
        """
        raise NotImplementedError

    def _on_dry(self, k: int) -> bool:
        """Hook: slot ``k`` has run dry (its streamer is exhausted or has
        spent its budget); the slot is still open.

        Refill it with `_open`, or close it with `_close`. Return True to
        drop the current schedule and ask `_schedule` for a new one, False
        to go on with it (the item due from slot ``k`` then comes from what
        now fills it, and is skipped if the slot is empty).
        """
        raise NotImplementedError
