"""The base of the muxes: validation, activation and the per-item loop.

`BaseMux` (re-exported by `pescador.mux`) owns everything the muxes share;
the muxes themselves, in `pescador.mux`, state only their policy.
"""

import inspect
import logging
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain, compress, repeat
from operator import length_hint
from typing import (Any, Callable, Dict, Iterable as TypingIterable, List,
                    Optional, Tuple)

import numpy as np

from .core import Streamer
from .exceptions import PescadorError
from .state import (BIG, check_keys, decode_rng, encode_rng,
                    encode_rng_state, mismatch, skip)
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


class _Slot:
    """One open activation of a child streamer in a slot of a mux.

    Its items are ``first`` (the item pulled when the slot opened, to see
    that the streamer is not empty, until it is taken), then the source's,
    read through a ``repeat`` counter whose remaining length tells how many
    items have been pulled and how much of the budget is left, without
    counting per item in Python: ``compress(source, repeat(True, BIG))``
    without a budget (the cheapest), ``map(next, repeat(source, budget))``
    with one (compress would pull one item past the budget).
    """

    __slots__ = ("streamer", "source", "active", "path", "first", "counter",
                 "start", "base", "budgeted")

    def __init__(self, streamer, source, active, path):
        self.streamer, self.source = streamer, source
        self.active, self.path = active, path
        self.first = self.counter = None
        self.start = self.base = 0
        self.budgeted = False

    def items(self, first, pulled, budget):
        """The `next` of the slot's items: ``first`` (an iterable of at most
        one item) then the source, ``pulled`` items having been taken from
        the source so far, ``budget`` left (None: no limit)."""
        self.first = iter(first)
        self.base = pulled
        self.budgeted = budget is not None
        if self.budgeted:
            self.start = budget
            self.counter = repeat(self.source, budget)
            return chain(self.first, map(next, self.counter)).__next__
        self.start = BIG
        self.counter = repeat(True, BIG)
        return chain(self.first, compress(self.source,
                                          self.counter)).__next__

    def state(self):
        """The slot's position: see `BaseMux._reopen`."""
        left = length_hint(self.counter)
        pulled = self.base + self.start - left
        pending = length_hint(self.first) > 0
        if pending:
            stream = None           # re-derived: a fresh activation's first
        elif self.active is not None:
            stream = self.active._state(pulled)
        else:
            stream = {"skip": pulled}
        return {"path": self.path, "pulled": pulled, "pending": pending,
                "left": left if self.budgeted else None, "stream": stream}


def _activation_source(streamer, parent, path=None, state=None):
    """A new activation of ``streamer`` in a slot of the activated mux
    ``parent``, fresh or continuing from the activation ``state``: a
    `_Slot` (its items not set up yet). ``path``: the activation count of
    a child mux, when restoring it."""
    if isinstance(streamer, BaseMux):
        active = streamer._activate(parent, path)
        source = (active._source() if state is None
                  else active._resume(state))
        return _Slot(streamer, source, active, active._path[-1])
    if (type(streamer) is Streamer and not streamer.kwargs
            and inspect.isgeneratorfunction(streamer.streamer)
            and not hasattr(streamer.streamer, "_pescador_resume")
            and (state is None or "skip" in state)):
        # Its activated copy would differ from it in nothing the generator
        # sees (args are shared, a function is not copied): skip the copy.
        source = streamer.streamer(*streamer.args)
        if state is not None:
            source = skip(source, state["skip"], _name(streamer))
        return _Slot(streamer, source, None, None)
    active = streamer._activate()
    active.stream_ = (active._source() if state is None
                      else active._resume(state))
    return _Slot(streamer, active.stream_, active, None)


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


def _seeds(top, draw=True):
    """One seed per seeded mux in the tree of ``top``, drawn from its
    generator (which advances it), keyed by ``id``, in the order of a walk
    of the tree; and those muxes, in the same order (``draw=False``: the
    muxes only). Walks the tree without recursion, and raises
    `PescadorError` if a mux contains itself."""
    seeds, seeded, state, stack = {}, [], {}, []

    def enter(node):
        state[id(node)] = "open"
        if isinstance(node, BaseMux) and node.random_state is not None:
            if draw:
                seeds[id(node)] = _draw_seed(node.rng)
            seeded.append(node)
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
    return seeds, seeded


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


def _encode_before(before):
    return None if before is None else encode_rng_state(before)


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

    Checkpoints (`pescador.get_state`) take two more: ``_policy_state()``
    returns the policy's bookkeeping in JSON types, and ``_restore(policy,
    slots)`` rebuilds it instead of ``_start`` (with ``_reopen`` for the
    slots and ``_resume_block`` for random draws made with ``_block``);
    the base records the rest (the generator, the slots' positions, nested
    muxes, the seeds). A mux without them iterates as usual but cannot be
    checkpointed.

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
    # and how many times each child mux has been opened from it; on the
    # outermost activation, the seeded muxes of the tree in walk order.
    _seeds: Dict[int, int]
    _path: Tuple[int, ...]
    _opened: Dict[int, int]
    _tree: List["BaseMux"]
    # The blocks of random draws in use, by name: the generator's state
    # before the block was drawn, its length and its iterator; and, on an
    # activation restored from a state not yet running, that state.
    _blocks: Dict[str, Tuple[Any, int, Iterator[Any]]]
    _saved_blocks: Dict[str, Any]
    _resume_state: Optional[Dict[str, Any]] = None
    # Whether to log activations (debug): read once per activation of the
    # mux, so that a disabled log costs one attribute test per opened slot.
    _debug = False
    # The open slots: (streamer, its live iterator) or None; and the `next`
    # of each (an empty slot's always raises StopIteration).
    _slots: List[Optional[_Slot]]
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

    def _activate(self, parent: Optional["BaseMux"] = None,
                  path: Optional[int] = None) -> "BaseMux":
        """The copy that one activation iterates.

        The copy shares the streamers, since a slot activates each afresh
        when it opens it: so an activation costs the same at any depth of
        nesting. What an activation owns is its generator. The outermost
        one (``parent`` None) draws one seed from each seeded mux of its
        tree (checking the tree for cycles on the way); a mux opened in a
        slot of the activated mux ``parent`` seeds its generator from that
        seed and the path of activation counts that leads to it. So two
        activations never share a generator, epochs differ, and a deep copy
        replays the same epochs. ``path``: the activation count to use
        (restoring a checkpoint) instead of the next one.
        """
        active = self.__class__.__new__(self.__class__)
        active.__dict__.update(self.__dict__)
        active.active = 0
        active._activated_copy = True
        if parent is None:
            active._seeds, active._tree = _seeds(self)
            active._path = ()
        else:
            count = path
            if count is None:
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
        slot = _activation_source(streamer, self)
        streamer.active += 1
        self._slots[k] = slot
        for first in slot.source:
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
        self._nexts[k] = slot.items((first,), 1,
                                    None if budget is None else budget - 1)
        return True

    def _reopen(self, k: int, streamer: Streamer,
                state: Dict[str, Any]) -> None:
        """Restore slot ``k`` to ``streamer``'s activation at ``state`` (what
        the slot's ``state()`` gave): a fresh activation that takes its
        first item again, if that item had not been taken yet; else the
        activation continuing from its own state (a mux's, or a number of
        items to skip)."""
        state = check_keys(state, ("path", "pulled", "pending", "left",
                                   "stream"), "a slot of " + repr(self))
        pending = state["pending"] or state["stream"] is None
        slot = _activation_source(streamer, self, state["path"],
                                  None if pending else state["stream"])
        streamer.active += 1
        self._slots[k] = slot
        first: Tuple[Any, ...] = ()
        if pending:
            for item in slot.source:
                first = (item,)
                break
            else:
                self._close(k)
                raise mismatch("a slot whose streamer yields",
                               "nothing", _name(streamer))
        self._nexts[k] = slot.items(first, state["pulled"], state["left"])

    def _close(self, k: int) -> None:
        slot = self._slots[k]
        if slot is not None:
            self._slots[k] = None
            self._nexts[k] = _DRY
            slot.streamer.active -= 1
            close = getattr(slot.source, "close", None)
            if close is not None:
                close()

    # -- blocks of random draws ----------------------------------------------

    def _block(self, name: str) -> Iterator[Any]:
        """Draw the block ``name`` (a list, from the policy's
        ``_draw_<name>()``) and return an iterator over it. The generator's
        state before the draw is kept, so that a checkpoint records the
        block as that state and a count of the values used."""
        before = (self.rng.bit_generator.state
                  if isinstance(self.rng, np.random.Generator) else None)
        values = getattr(self, "_draw_" + name)()
        block = iter(values)
        self._blocks[name] = (before, len(values), block)
        return block

    def _drop_block(self, name: str) -> Iterator[Any]:
        """Forget the block ``name``; return an empty iterator."""
        self._blocks.pop(name, None)
        return iter(())

    def _resume_block(self, name: str) -> Optional[Iterator[Any]]:
        """The block ``name`` as it was at the checkpoint being restored:
        drawn again from the generator's state before it, its used values
        skipped; None if there was none."""
        saved = self._saved_blocks.get(name)
        if saved is None:
            return None
        before, used = saved
        decode_rng(self.rng, before, repr(self))
        return skip(self._block(name), used, "a block of random draws")

    # -- the loop ----------------------------------------------------------

    def _source(self):
        return self._loop(None)

    def _resume(self, state: Dict[str, Any]) -> Any:
        self._resume_state = state
        return self._loop(state)

    def _loop(self, state):
        self._debug = _logger.isEnabledFor(logging.DEBUG)
        if self._debug:
            _logger.debug("%r: activation %s (path %s)", self,
                          "started" if state is None else "resumed",
                          getattr(self, "_path", ()))
        self._init_slots(0)
        self._blocks = {}
        try:
            if state is None:
                self._start()
                schedule = self._schedule()
            else:
                schedule = self._restore_state(state)
                self._resume_state = None
            nexts = self._nexts
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

    # -- checkpoints ---------------------------------------------------------

    def _state(self, pulled: int = 0) -> Dict[str, Any]:
        """The state of this activation, at the item it last yielded (see
        `pescador.get_state`): its generator, its blocks of draws, its open
        slots (each recursively), its policy's bookkeeping; on the
        outermost activation, also the seeds of the tree and the state of
        each seeded mux's own generator, so that later epochs continue."""
        if self._resume_state is not None:      # restored, not yet running
            return self._resume_state
        index = ({id(s): i for i, s in enumerate(self.streamers)}
                 if isinstance(self.streamers, list) else {})
        state: Dict[str, Any] = {
            "mux": type(self).__name__,
            "n": len(self.streamers) if index else None,
            "rng": encode_rng(self.rng) if self.random_state is not None
            else None,
            "blocks": {name: [_encode_before(before), size - length_hint(
                block)] for name, (before, size, block)
                in self._blocks.items()},
            "opened": sorted([index[key], count] for key, count
                             in self._opened.items() if key in index),
            "slots": [None if slot is None else slot.state()
                      for slot in self._slots],
            "policy": self._policy_state(),
        }
        if not self._path:
            state["seeds"] = [self._seeds[id(m)] for m in self._tree]
            state["epochs"] = [encode_rng(m.rng) for m in self._tree]
        return state

    def _final_state(self) -> Optional[Dict[str, Any]]:
        """On the outermost activation, once it has ended: the state of each
        seeded mux's own generator, which the epochs after it draw from."""
        if self._path:
            return None
        return {"mux": type(self).__name__,
                "epochs": [encode_rng(m.rng) for m in self._tree]}

    def _next_state(self) -> Optional[Dict[str, Any]]:
        return {"mux": type(self).__name__,
                "epochs": [encode_rng(m.rng)
                           for m in _seeds(self, draw=False)[1]]}

    def _restore_epochs(self, state: Optional[Dict[str, Any]]) -> None:
        """Set each seeded mux's own generator of the tree to where the
        outermost activation ``state`` (or its `_final_state`) left it."""
        if state is None:
            return
        state = check_keys(state, ("mux", "epochs"), repr(self))
        if state["mux"] != type(self).__name__:
            raise mismatch("a mux of type", type(self).__name__,
                           state["mux"])
        tree = _seeds(self, draw=False)[1]
        if len(tree) != len(state["epochs"]):
            raise mismatch("a tree of seeded muxes", len(tree),
                           len(state["epochs"]))
        for mux, epoch in zip(tree, state["epochs"]):
            decode_rng(mux.rng, epoch, repr(mux))

    def _restore_state(self, state):
        """Restore this fresh activation to ``state``; return the schedule
        to go on with."""
        state = check_keys(state, ("mux", "n", "rng", "blocks", "opened",
                                   "slots", "policy"), repr(self))
        if state["mux"] != type(self).__name__:
            raise mismatch("a mux of type", type(self).__name__,
                           state["mux"])
        n = len(self.streamers) if isinstance(self.streamers, list) else None
        if state["n"] != n:
            raise mismatch("a mux of streamers", n, state["n"])
        if not self._path:
            seeds = check_keys(state, ("seeds", "epochs"), repr(self))
            if len(seeds["seeds"]) != len(self._tree):
                raise mismatch("a tree of seeded muxes", len(self._tree),
                               len(seeds["seeds"]))
            for mux, seed, epoch in zip(self._tree, seeds["seeds"],
                                        seeds["epochs"]):
                self._seeds[id(mux)] = seed
                decode_rng(mux.rng, epoch, repr(mux))
        for i, count in state["opened"]:
            self._opened[id(self.streamers[i])] = count
        self._saved_blocks = state["blocks"]
        schedule = self._restore(state["policy"], state["slots"])
        decode_rng(self.rng, state["rng"], repr(self))
        return schedule

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

    def _policy_state(self) -> Dict[str, Any]:
        """Hook: the policy's own bookkeeping, in JSON types, for a
        checkpoint (the slots, blocks of draws and generator are the
        base's).
        """
        raise PescadorError(
            "{} cannot be checkpointed: it does not define _policy_state "
            "and _restore (see BaseMux)".format(type(self).__name__))

    def _restore(self, policy: Dict[str, Any],
                 slots: List[Optional[Dict[str, Any]]]
                 ) -> Optional[TypingIterable[int]]:
        """Hook: instead of `_start`, restore a checkpoint: set up the
        policy's state from ``policy`` (what `_policy_state` gave), reopen
        each slot that was open with ``self._reopen(k, streamer,
        slots[k])``, get each block of draws that was in use back with
        ``self._resume_block(name)``, and return the schedule to go on with
        (see `_schedule`). The base sets the generator's state afterwards.
        Raise `PescadorError` (see `pescador.state.mismatch`) if they do not
        fit this mux.
        """
        raise PescadorError(
            "{} cannot resume: it does not define _policy_state and "
            "_restore (see BaseMux)".format(type(self).__name__))

    def _on_dry(self, k: int) -> bool:
        """Hook: slot ``k`` has run dry (its streamer is exhausted or has
        spent its budget); the slot is still open.

        Refill it with `_open`, or close it with `_close`. Return True to
        drop the current schedule and ask `_schedule` for a new one, False
        to go on with it (the item due from slot ``k`` then comes from what
        now fills it, and is skipped if the slot is empty).
        """
        raise NotImplementedError
