"""The tree of a mux: its slots (one open activation of a child streamer
each), the activations it opens, and the seeds of the seeded muxes in it."""

import inspect
from typing import Any
from itertools import chain, compress, repeat
from operator import length_hint

import numpy as np

from .core import Streamer
from .exceptions import PescadorError
from .state import BIG, encode_rng_state, skip


class MuxNode:
    """The marker base of every mux (`pescador.BaseMux`), by which the tree
    helpers tell a mux from another streamer without importing it."""

    streamers: Any
    random_state: Any
    rng: Any

    def _activate(self, parent: Any = None, path: Any = None) -> Any:
        raise NotImplementedError


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
    if isinstance(streamer, MuxNode):
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
    if isinstance(streamer, MuxNode):
        return repr(streamer)
    source = streamer.streamer
    return "{}({})".format(type(streamer).__name__, getattr(
        source, "__qualname__", None) or type(source).__name__)


def _children(streamer):
    """The streamers a Streamer or mux opens, as far as they are known
    before it runs (a lazy source of streamers is not looked into)."""
    if isinstance(streamer, MuxNode):
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
        if isinstance(node, MuxNode) and node.random_state is not None:
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
