"""Muxes: mix many streamers into one stream.

Every mux is a `Streamer`, so muxes nest and can be iterated many times.
`BaseMux` owns validation, activation and the per-item loop; each subclass
states only its policy: which streamers start active, which slot gives the
next item, what replaces a slot that runs dry, and when the mux is done.

Random states and epochs: with ``random_state=None`` a mux draws from the
global numpy generator, as pescador 2.0 did. With an int or a RandomState,
each activation (epoch) draws from its own generator derived from the mux's
seeded one (as does each seeded mux nested in it), so successive epochs
differ while a deep copy of the mux replays exactly what the original does.
"""

import inspect
import warnings
from collections.abc import Iterator
from itertools import cycle, repeat
from typing import Any, Iterable, List, Optional

import numpy as np
from numpy.typing import ArrayLike

from ._mux_base import BaseMux, _BLOCK, _logger
from ._mux_checks import (_as_streamer, _check_streamers,
                          _check_weights, _weighted_indices)
from ._mux_tree import _name
from ._stochastic import StochasticMux
from .state import check_keys, mismatch, skip
from .core import Streamer
from .exceptions import PescadorError
from .util import RandomStateLike, _check_choice

__all__ = ["BaseMux", "StochasticMux", "ShuffledMux", "RoundRobinMux",
           "ChainMux", "Mux"]


# -- the policies (StochasticMux: in _stochastic) ------------------------------

# StochasticMux lives in its own module; it is documented, pickled and
# shown as pescador.mux.StochasticMux.
StochasticMux.__module__ = __name__


class ShuffledMux(BaseMux):
    """All streamers active at once; each item comes from streamer ``i``
    with probability ``weights[i]``.

    An exhausted streamer is restarted; one that yields nothing at all (on
    any activation) is dropped. The mux ends when every streamer has been
    dropped, so it runs forever unless the streamers run dry.

    Parameters
    ----------
    streamers : list of Streamer or iterable
    weights : None or array-like of float, shape (len(streamers),)
        Non-negative, normalised to sum to 1 (ints give the same sequence as
        the equal floats). ``None``: uniform. A streamer of weight 0 is never
        activated.
    random_state : None, int, np.random.RandomState or np.random.Generator
        As for `BaseMux`: ``None`` is the global numpy generator; with a
        seed, epochs differ and a deep copy replays them.

    Raises
    ------
    PescadorError
        For an empty or invalid ``streamers``, invalid ``weights`` or
        ``random_state``.

    Examples
    --------
    >>> import pescador
    >>> def gen(n):
    ...     while True:
    ...         yield n
    >>> streams = [pescador.Streamer(gen, value) for value in 'ABCDE']
    >>> train_gen = pescador.ShuffledMux(streams)
    >>> samples = ''.join(train_gen(max_iter=200))
    >>> len(samples), sorted(set(samples))
    (200, ['A', 'B', 'C', 'D', 'E'])

    A seeded mux differs from one epoch to the next, and a deep copy of it
    replays its epochs:

    >>> import copy
    >>> mux = pescador.ShuffledMux(['ab', 'xyz'], weights=[2, 1],
    ...                            random_state=0)
    >>> replay = copy.deepcopy(mux)
    >>> ''.join(mux(max_iter=12)), ''.join(mux(max_iter=12))
    ('xyabzxabayzb', 'xyabazxbabya')
    >>> ''.join(replay(max_iter=12)), ''.join(replay(max_iter=12))
    ('xyabzxabayzb', 'xyabazxbabya')
    """

    def __init__(self, streamers: Iterable[Any],
                 weights: Optional[ArrayLike] = None,
                 random_state: RandomStateLike = None) -> None:
        super().__init__(streamers, random_state)
        self.weights = _check_weights(weights, len(self.streamers))

    def _start(self):
        self._init_slots(len(self.streamers))
        self._live = self.weights.copy()
        for k in np.flatnonzero(self._live).tolist():
            if not self._open(k, self.streamers[k]):
                self._drop(k)

    def _schedule(self):
        if not self._live.any():
            return None
        return self._block("schedule")

    def _draw_schedule(self):
        return _weighted_indices(self.rng, self._live, _BLOCK)

    def _policy_state(self):
        return {"dropped": np.flatnonzero(
            self._live != self.weights).tolist()}

    def _restore(self, policy, slots):
        check_keys(policy, ("dropped",), repr(self))
        self._init_slots(len(self.streamers))
        self._live = self.weights.copy()
        self._live[policy["dropped"]] = 0.0
        for k, slot in enumerate(slots):
            if slot is not None:
                self._reopen(k, self.streamers[k], slot)
        schedule = self._resume_block("schedule")
        return self._schedule() if schedule is None else schedule

    def _on_dry(self, k):
        if self._open(k, self.streamers[k]):
            return False
        self._drop(k)
        return True

    def _drop(self, k):
        self._live[k] = 0.0
        if self._debug:
            _logger.debug("%r: pruned streamers[%d], %s: it yielded nothing",
                          self, k, _name(self.streamers[k]))


class RoundRobinMux(BaseMux):
    """Take one item from each streamer in turn, skipping exhausted ones.

    Parameters
    ----------
    streamers : list of Streamer or iterable
    mode : {'exhaustive', 'cycle', 'permuted_cycle'}
        - 'exhaustive': end when every streamer is exhausted.
        - 'cycle': then restart them all, in the same order.
        - 'permuted_cycle': then restart them all in a new random order;
          the first pass is in a random order too.

        The mux ends, rather than spinning, when a whole pass yields nothing.
    random_state : None, int, np.random.RandomState or np.random.Generator
        Used by 'permuted_cycle', as described in `BaseMux`.

    Raises
    ------
    PescadorError
        For an empty or invalid ``streamers``, an invalid ``mode`` or
        ``random_state``.

    Examples
    --------
    >>> import pescador
    >>> ''.join(pescador.RoundRobinMux(['abc', '', 'xy', '1']))
    'ax1byc'
    >>> mux = pescador.RoundRobinMux(['abc', 'xy'], mode='cycle')
    >>> ''.join(mux(max_iter=12))
    'axbycaxbycax'
    >>> mux = pescador.RoundRobinMux(['ab', 'cd', 'ef'], mode='permuted_cycle',
    ...                              random_state=0)
    >>> ''.join(mux(max_iter=18))
    'eacfbdcaedbfeacfbd'
    """

    def __init__(self, streamers: Iterable[Any], mode: str = "exhaustive",
                 random_state: RandomStateLike = None) -> None:
        super().__init__(streamers, random_state)
        self.mode = _check_choice(
            "mode", mode, ("exhaustive", "cycle", "permuted_cycle"))

    def _start(self):
        self._init_slots(len(self.streamers))
        self._live = []         # open slots, in rotation order
        self._position = 0      # in _live, of the next slot
        self._passes = 0

    def _schedule(self):
        if not self._live:
            if self._passes and self.mode == "exhaustive":
                return None
            # A new pass, opened here rather than in a helper: each call
            # level is paid once per level of nested muxes.
            self._position = 0
            self._passes += 1
            for k in self._pass_order():
                if self._open(k, self.streamers[k]):
                    self._live.append(k)
            if not self._live:
                return None
        live, position = self._live, self._position % len(self._live)
        return cycle(live[position:] + live[:position])

    def _policy_state(self):
        return {"live": list(self._live), "passes": self._passes}

    def _restore(self, policy, slots):
        check_keys(policy, ("live", "passes"), repr(self))
        self._init_slots(len(self.streamers))
        self._live = list(policy["live"])
        self._passes = policy["passes"]
        yielded = {}
        for k in self._live:
            slot = slots[k]
            self._reopen(k, self.streamers[k], slot)
            yielded[k] = slot["pulled"] - slot["pending"]
        # In strict rotation the slots that gave one item more this pass
        # come first: the next slot is the first that gave the fewest.
        fewest = min(yielded.values(), default=0)
        self._position = next((p for p, k in enumerate(self._live)
                               if yielded[k] == fewest), 0)
        return self._schedule()

    def _pass_order(self):
        if self.mode == "permuted_cycle":
            return self.rng.permutation(len(self.streamers)).tolist()
        return range(len(self.streamers))

    def _on_dry(self, k):
        self._close(k)
        self._position = self._live.index(k)
        del self._live[self._position]
        return True


class ChainMux(BaseMux):
    """Exhaust the first streamer, then the next, like `itertools.chain`.

    Only one streamer is open at a time, and empty ones are skipped.

    Parameters
    ----------
    streamers : list of Streamer or iterable, or a lazy source of them
        A list (or any collection) is validated at once and may be empty
        (the mux then yields nothing). An iterator, e.g. a generator of
        streamers, is consumed lazily, one streamer at a time, by the first
        iteration of the mux only: later iterations get nothing from it. A
        generator function that yields streamers (called afresh at each
        pass, like ``Streamer(func)``) or a `Streamer` whose items are
        streamers (iterated afresh at each pass) chains lazily created
        streamers every time.
    mode : {'exhaustive', 'cycle'}
        'cycle' starts over after the last streamer. With a one-shot
        iterator, the first iteration remembers the streamers it took (as
        `itertools.cycle` does) and cycles through those. The mux ends,
        rather than spinning, when a whole pass yields nothing.
    random_state : None, int, np.random.RandomState or np.random.Generator
        Accepted for a uniform interface; the chain is not random.

    Raises
    ------
    PescadorError
        For an invalid ``streamers`` (or element), ``mode`` or
        ``random_state``.

    Examples
    --------
    >>> import pescador
    >>> ''.join(pescador.ChainMux(['ab', '', 'cde']))
    'abcde'
    >>> mux = pescador.ChainMux(['ab', 'c'], mode='cycle')
    >>> ''.join(mux(max_iter=7))
    'abcabca'
    >>> lazy = pescador.ChainMux(pescador.Streamer(w) for w in ['hi', 'yo'])
    >>> ''.join(lazy), ''.join(lazy)
    ('hiyo', '')
    >>> def words():
    ...     yield from (pescador.Streamer(w) for w in ['hi', 'yo'])
    >>> again = pescador.ChainMux(words)
    >>> ''.join(again), ''.join(again)
    ('hiyo', 'hiyo')
    """

    # Per activation: the streamers a one-shot source gave (for 'cycle').
    _seen: Optional[List[Any]]

    def __init__(self, streamers: Any, mode: str = "exhaustive",
                 random_state: RandomStateLike = None) -> None:
        super().__init__(streamers, random_state)
        self.mode = _check_choice("mode", mode, ("exhaustive", "cycle"))

    def _prepare_streamers(self, streamers):
        if isinstance(streamers, (Iterator, Streamer)) or \
                inspect.isgeneratorfunction(streamers):
            return streamers
        return _check_streamers(streamers, allow_empty=True)

    def _start(self):
        self._init_slots(1)
        self._seen = None
        if isinstance(self.streamers, Iterator) and self.mode == "cycle":
            self._seen = []
        self._pending = self._pass()
        self._index = 0         # streamers taken from _pending this pass
        self._produced = False
        self._advance()

    def _pass(self):
        if isinstance(self.streamers, list):
            return iter(self.streamers)
        if self._seen:
            return iter(list(self._seen))
        source = self.streamers
        if isinstance(source, Streamer):
            source = source.iterate()
        elif inspect.isgeneratorfunction(source):
            source = source()
        streamers = (_as_streamer(s, i) for i, s in enumerate(source))
        if self._seen is None:
            return streamers
        return _remembered(streamers, self._seen)

    def _advance(self):
        """Open the next streamer that yields; False when the chain ends."""
        while True:
            for streamer in self._pending:
                self._index += 1
                if self._open(0, streamer):
                    self._produced = True
                    return True
            if self.mode == "exhaustive" or not self._produced:
                return False
            self._produced = False
            self._pending = self._pass()
            self._index = 0

    def _policy_state(self):
        return {"index": self._index, "produced": self._produced}

    def _restore(self, policy, slots):
        check_keys(policy, ("index", "produced"), repr(self))
        if isinstance(self.streamers, Iterator):
            raise PescadorError(
                "A ChainMux over a one-shot iterator of streamers cannot "
                "resume: pass a list, or a generator function that yields "
                "the streamers")
        self._init_slots(1)
        self._seen = None
        self._pending = self._pass()
        self._index = policy["index"]
        self._produced = policy["produced"]
        skip(self._pending, self._index - 1, repr(self))
        streamer = next(self._pending, None)
        if streamer is None or slots[0] is None:
            raise mismatch("a chain whose streamer number", self._index,
                           "none")
        self._reopen(0, streamer, slots[0])
        return self._schedule()

    def _schedule(self):
        return repeat(0) if self._slots[0] is not None else None

    def _on_dry(self, k):
        self._close(k)
        return not self._advance()


def _remembered(streamers, seen):
    """Yield ``streamers``, appending each to ``seen`` first."""
    for streamer in streamers:
        seen.append(streamer)
        yield streamer


class Mux(StochasticMux):
    """The pescador 1.x mux, deprecated: use `StochasticMux`.

    Behaves as ``StochasticMux(streamers, n_active=k, rate, weights, mode,
    prune_empty_streams, random_state)``, where ``mode`` is
    'with_replacement' if ``with_replacement``, else 'single_active' if
    ``revive``, else 'exhaustive'.

    Parameters
    ----------
    streamers, weights, prune_empty_streams, random_state
        As for `StochasticMux`.
    k : int > 0
        The number of active streamers (``n_active``).
    rate : None or float >= 0
    with_replacement, revive : bool

    Warns
    -----
    DeprecationWarning
        Always.

    Examples
    --------
    >>> import warnings
    >>> import pescador
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter('always')
    ...     mux = pescador.Mux(['ab', 'cd'], k=2, rate=None,
    ...                        with_replacement=False, revive=False)
    >>> caught[0].category.__name__, mux.mode, mux.n_active
    ('DeprecationWarning', 'exhaustive', 2)
    >>> sorted(mux)
    ['a', 'b', 'c', 'd']
    """

    def __init__(self, streamers: Iterable[Any], k: int,
                 rate: Optional[float] = 256.0,
                 weights: Optional[ArrayLike] = None,
                 with_replacement: bool = True,
                 prune_empty_streams: bool = True, revive: bool = False,
                 random_state: RandomStateLike = None) -> None:
        warnings.warn(
            "pescador.Mux is deprecated since 2.0 and will be removed in 3.0;"
            " use StochasticMux(streamers, n_active=k, rate, mode=...)",
            DeprecationWarning, stacklevel=2)
        if with_replacement:
            mode = "with_replacement"
        elif revive:
            mode = "single_active"
        else:
            mode = "exhaustive"
        super().__init__(streamers, k, rate, weights=weights, mode=mode,
                         prune_empty_streams=prune_empty_streams,
                         random_state=random_state)
        self.k = k
        self.with_replacement = with_replacement
        self.revive = revive
