"""The machinery of `pescador.maps.cache`: its loop, its blocks of random
draws, and its checkpoint (the cached items' positions, an origin to
re-run the input from, the generator's state) and resume."""

from itertools import islice
from operator import length_hint
from typing import Any, List

import numpy as np

from ._maps_state import MapInput, map_state, no_items
from .exceptions import PescadorError
from .state import decode_rng, encode_rng_state, register

# Random numbers for `cache` are drawn this many at a time.
_CACHE_BLOCK = 256
# `cache` records its input's position at most once per this many items
# pulled (or 4 * n_cache): reading a mux's state costs tens of
# microseconds.
_ORIGIN_SPACING = 8192


class _CacheProgress:
    """What `get_state` reads from a running `cache`.

    ``positions[k]``: the index (in the input's iteration, from its start)
    of the item in slot ``k``; ``origin``: the input's state at that start;
    ``candidate``: the input's state at a later position, the next origin
    once the items cached before it are gone; ``check``: the number of
    items pulled at which to look at that again;
    ``before``: the generator's state before the first block of draws (read
    once: reading it costs as much as drawing five blocks), ``blocks``: the
    number of blocks drawn, ``picks``: the iterator over the current
    block's slot picks (its remaining length tells how many steps of the
    block are used).
    """

    __slots__ = ("origin", "positions", "before", "blocks", "picks", "done",
                 "candidate", "check")

    def __init__(self, origin, positions, done):
        self.origin, self.positions, self.done = origin, positions, done
        self.before = self.picks = self.candidate = None
        self.blocks = self.check = 0

    def block(self):
        if self.picks is None:
            return None
        return [None if self.before is None
                else encode_rng_state(self.before), self.blocks,
                _CACHE_BLOCK - length_hint(self.picks)]


def start_cache(stream, params, rng, state):
    """The registered generator of `cache`, fresh or continuing from
    ``state`` (checked)."""
    if state is None:
        source = MapInput(stream, "cache")
        # The input's state before its first item holds the generators its
        # epoch draws from, so re-running it from there draws it again.
        start = _resumable_state(source)
        progress = _CacheProgress(None if start is None else {
            "input": start, "position": 0}, [], False)
        generator = _cache(source, params, rng, progress, [], None)
    else:
        positions = _check_positions(state["slots"], params["n_cache"])
        origin = _check_origin(state["origin"], positions)
        progress = _CacheProgress(origin, positions, state["done"])
        if progress.done:
            source, generator = None, no_items()
        else:
            # Re-run the input from the origin to get the cached items.
            source = MapInput(stream, "cache", origin["input"])
            slots = _rederive(source.items, positions, origin["position"])
            block = _resume_block(rng, params, progress, state["block"])
            generator = _cache(source, params, rng, progress, slots, block)

    def read_state():
        if progress.origin is None and source is not None:
            source.state()      # a one-shot input: says why it cannot
        return map_state("cache", params, progress.done,
                         origin=progress.origin,
                         slots=list(progress.positions),
                         block=progress.block())
    return register(generator, read_state)


def _resumable_state(source):
    """``source.state()``, or None for a one-shot input."""
    try:
        return source.state()
    except PescadorError:
        return None


def _cache(source, params, rng, progress, slots, block):
    n_cache = params["n_cache"]
    items = source.items
    positions = progress.positions
    pulled = max(positions) + 1 if positions else 0
    for item in islice(items, n_cache - len(slots)):
        slots.append(item)
        positions.append(pulled)
        pulled += 1
        yield item
    if len(slots) < n_cache:
        progress.done = True
        return
    end = object()
    spacing = max(_ORIGIN_SPACING, 4 * n_cache)
    progress.check = pulled + spacing
    while True:
        if pulled >= progress.check:
            _move_origin(progress, source, pulled, spacing)
        picks, fresh = block or _draw_block(rng, params, progress)
        block = None
        for slot, replace in zip(picks, fresh):
            if replace:
                item = next(items, end)
                if item is end:
                    progress.done = True
                    return
                slots[slot] = item
                positions[slot] = pulled
                pulled += 1
            yield slots[slot]


def _move_origin(progress, source, pulled, spacing):
    """Every ``spacing`` items pulled: record the input's state here as a
    candidate origin, and make the last candidate the origin once every
    item cached before it has left the cache, so that resuming re-runs the
    input from there instead of from its start."""
    progress.check = pulled + spacing
    if progress.origin is None:     # a one-shot input
        return
    candidate = progress.candidate
    if candidate is not None and min(progress.positions) >= (
            candidate["position"]):
        progress.origin = candidate
        candidate = None
    if candidate is None:
        progress.candidate = {"input": source.state(), "position": pulled}


def _draw_block(rng, params, progress):
    """The next block of steps (slot picks, replace decisions), as
    iterators; ``progress`` keeps what a checkpoint needs of it."""
    if not progress.blocks and params["seeded"]:
        progress.before = _rng_state(rng)
    progress.blocks += 1
    picks, fresh = _draw_steps(rng, params["n_cache"], params["prob"],
                               _CACHE_BLOCK)
    progress.picks = iter(picks)
    return progress.picks, iter(fresh)


def _rng_state(rng):
    if isinstance(rng, np.random.Generator):
        return rng.bit_generator.state
    return rng.get_state(legacy=False)


def _resume_block(rng, params, progress, block):
    """The block of steps in use at the checkpoint: drawn again, with the
    blocks before it, from the generator's state before the first, its
    used steps skipped; None if there was none (or the generator is
    numpy's global one, whose state is not ours: the next block is then
    drawn afresh)."""
    if block is None or not params["seeded"]:
        return None
    if not (isinstance(block, list) and len(block) == 3
            and all(type(n) is int for n in block[1:])
            and block[1] > 0 and 0 <= block[2] <= _CACHE_BLOCK):
        raise PescadorError(
            "Invalid state for cache: block={!r}, expected [random state, "
            "blocks drawn > 0, steps used <= {}]".format(block, _CACHE_BLOCK))
    before, blocks, used = block
    decode_rng(rng, before, "cache")
    progress.before = _rng_state(rng)
    for _ in range(blocks - 1):
        _draw_steps(rng, params["n_cache"], params["prob"], _CACHE_BLOCK)
    progress.blocks = blocks - 1
    picks, fresh = _draw_block(rng, params, progress)
    if used:
        next(islice(zip(picks, fresh), used - 1, None))
    return picks, fresh


def _check_positions(positions, n_cache):
    """The cache slots' ``positions`` from a state, checked."""
    if not (isinstance(positions, list) and len(positions) <= n_cache
            and all(type(p) is int and p >= 0 for p in positions)
            and len(set(positions)) == len(positions)):
        raise PescadorError(
            "Invalid state for cache: slots={!r}, expected at most n_cache={}"
            " distinct item positions".format(positions, n_cache))
    if len(positions) < n_cache and positions != list(range(len(positions))):
        raise PescadorError(
            "Invalid state for cache: slots={!r} for a cache still filling "
            "up (expected the first items in order)".format(positions))
    return list(positions)


def _check_origin(origin, positions):
    """The ``origin`` of a cache state, checked against its ``positions``."""
    if not (isinstance(origin, dict) and set(origin) == {"input", "position"}
            and type(origin["position"]) is int
            and 0 <= origin["position"] <= min(positions, default=0)):
        raise PescadorError(
            "Invalid state for cache: origin={:.200}, expected a dict with "
            "keys input, position (at or before the cached items)".format(repr(origin)))
    return origin


def _rederive(items, positions, start):
    """The items at ``positions`` of ``items``, an iteration from position
    ``start``, in the order of ``positions``; ``items`` is consumed up to
    the last of them."""
    slots: List[Any] = [None] * len(positions)
    end = object()
    last = start - 1
    for k in sorted(range(len(positions)), key=positions.__getitem__):
        item = next(islice(items, positions[k] - last - 1, None), end)
        if item is end:
            raise PescadorError(
                "The state does not fit the stream: the input of cache ended"
                " before item {} where the state was taken".format(
                    positions[k]))
        slots[k] = item
        last = positions[k]
    return slots


def _draw_steps(rng, n_cache, prob, size):
    """The slots picked and the replace decisions for ``size`` steps, as
    lists."""
    if isinstance(rng, np.random.Generator):
        picks, uniform = rng.integers(n_cache, size=size), rng.random(size)
    else:
        picks = rng.randint(n_cache, size=size)
        uniform = rng.random_sample(size)
    return picks.tolist(), (uniform < prob).tolist()

