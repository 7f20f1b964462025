"""The base of the muxes: activation, slots, the per-item loop and the
policy's hooks.

`BaseMux` (re-exported by `pescador.mux`) owns everything the muxes share,
with its parts in `_mux_checks` (parameters), `_mux_tree` (slots and
seeds) and `_mux_checkpoint` (checkpoints); the muxes themselves, in
`pescador.mux`, state only their policy.
"""

import logging
from collections.abc import Iterator
from typing import (Any, Dict, Iterable as TypingIterable, List,
                    Optional)

import numpy as np

from ._mux_checkpoint import Checkpoints
from ._mux_checks import _check_streamers
from ._mux_tree import (_activation_source, _draw_seed,
                        _name, _seeded_rng, _seeds)
from .core import Streamer
from .exceptions import PescadorError
from .util import RandomStateLike, get_rng

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


# -- the base --------------------------------------------------------------

class BaseMux(Checkpoints, Streamer):
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

    def _close(self, k: int) -> None:
        slot = self._slots[k]
        if slot is not None:
            self._slots[k] = None
            self._nexts[k] = _DRY
            slot.streamer.active -= 1
            close = getattr(slot.source, "close", None)
            if close is not None:
                close()

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
