"""Checkpoints of the muxes: the part of `pescador.BaseMux` that records
the state of an activation and restores one from it (see
`pescador.get_state`)."""

from operator import length_hint
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterator, List,
                    Optional, Tuple)

import numpy as np

from ._mux_tree import (MuxNode, _Slot, _activation_source, _encode_before,
                        _name, _seeds)
from .core import Streamer
from .state import (check_fits, check_keys, decode_rng, encode_rng,
                    mismatch, skip)

if TYPE_CHECKING:
    from ._mux_base import BaseMux  # noqa: F401


class Checkpoints(MuxNode):
    """What `BaseMux` does for checkpoints: its blocks of random draws,
    reopening slots, and reading and restoring the state of an
    activation."""

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
    # The open slots (a `_Slot` each, or None) and the `next` of each (an
    # empty slot's always raises StopIteration).
    _slots: List[Optional[_Slot]]
    _nexts: List[Callable[[], Any]]
    # Defined by BaseMux: closing a slot, and the policy's two hooks.
    _close: Callable[[int], None]
    _policy_state: Callable[[], Dict[str, Any]]
    _restore: Callable[[Dict[str, Any], List[Optional[Dict[str, Any]]]],
                       Any]

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
            state.update(self._epochs(self._tree))
        return state

    def _epochs(self, tree: List[Any]) -> Dict[str, Any]:
        """The state of the own generator of each seeded mux of ``tree``,
        which the epochs draw from, as `_restore_epochs` takes it."""
        return {"mux": type(self).__name__,
                "epochs": [encode_rng(m.rng) for m in tree]}

    def _final_state(self) -> Optional[Dict[str, Any]]:
        """On the outermost activation, once it has ended: what the epochs
        after it draw from."""
        return None if self._path else self._epochs(self._tree)

    def _next_state(self) -> Optional[Dict[str, Any]]:
        return self._epochs(_seeds(self, draw=False)[1])

    def _restore_epochs(self, state: Optional[Dict[str, Any]]) -> None:
        """Set each seeded mux's own generator of the tree to where the
        outermost activation ``state`` (or its `_final_state`) left it."""
        if state is None:
            return
        state = check_keys(state, ("mux", "epochs"), repr(self))
        check_fits(("a mux of type", type(self).__name__, state["mux"]))
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
        n = len(self.streamers) if isinstance(self.streamers, list) else None
        check_fits(("a mux of type", type(self).__name__, state["mux"]),
                   ("a mux of streamers", n, state["n"]))
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
