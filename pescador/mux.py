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
from bisect import bisect_right
from collections.abc import Iterator
from itertools import accumulate, cycle, repeat
from typing import Any, Iterable, List, Optional

import numpy as np
from numpy.typing import ArrayLike

from ._mux_base import (BaseMux, _as_streamer, _check_rate,
                        _check_streamers, _check_weights, _logger, _name,
                        _weighted_indices, _BLOCK, _TRIES)
from .state import check_keys, mismatch, skip
from .core import Streamer
from .exceptions import PescadorError
from .util import RandomStateLike, _check_choice, _check_positive_int

__all__ = ["BaseMux", "StochasticMux", "ShuffledMux", "RoundRobinMux",
           "ChainMux", "Mux"]


# -- the policies ----------------------------------------------------------

class StochasticMux(BaseMux):
    """Keep ``n_active`` streamers drawn at random active, each for a random
    number of items, and mix their items at random.

    Each slot holds a streamer drawn from the pool with probability
    proportional to its weight, for a budget of ``1 + Poisson(rate)`` items
    (or another budget, by ``dist``).
    Each item comes from an active slot chosen with probability
    proportional to the weight of its streamer. A slot whose streamer has
    spent its budget or is exhausted is refilled by a new draw. Over a long
    run, the share of items from streamer ``i`` is ``weights[i]`` (when the
    streamers outlast their budgets).

    Parameters
    ----------
    streamers : list of Streamer or iterable
    n_active : int > 0
        The number of slots (at most 2**24). Large values approach
        `ShuffledMux`.
    rate : None or float >= 0
        The mean budget, minus one (with ``dist=None``; the mean budget
        itself with the other ``dist``); ``None`` runs each streamer to
        exhaustion. Small values mix better.
    weights : None or array-like of float, shape (len(streamers),)
        Non-negative; normalised to sum to 1. ``None``: uniform.
    mode : {'with_replacement', 'single_active', 'exhaustive'}
        - 'with_replacement': a streamer may fill several slots at once;
          runs forever.
        - 'single_active': a streamer fills at most one slot at a time and
          returns to the pool when it leaves it; runs forever.
        - 'exhaustive': each streamer is activated at most once (its budget
          applies: only ``rate=None`` yields every item of every
          streamer); ends when every streamer has been used.

        In the last two modes, slots that no streamer can fill stay empty
        (e.g. when ``n_active > len(streamers)``).
    prune_empty_streams : bool
        If True, a streamer that yields nothing on an activation is never
        drawn again. If False it may be drawn again, but not before some
        activation has yielded an item: so in every mode the mux ends,
        rather than spinning, once no streamer can yield anything.
    random_state : None, int, np.random.RandomState or np.random.Generator
        ``None``: the global numpy generator. A seed makes every epoch
        reproducible (a deep copy of the mux replays it) while successive
        epochs differ.
    dist : {None, 'constant', 'poisson', 'binomial'}
        The budget of an activation (pescador 3.0's budgets, each of mean
        ``rate``, when ``rate >= 1``):

        - ``None``: ``1 + Poisson(rate)``, as in pescador 2.0.
        - 'constant': ``rate`` items. A fractional rate is rounded at
          random to ``floor(rate)`` or ``floor(rate) + 1``, so that the mean
          is ``rate``.
        - 'poisson': ``1 + Poisson(rate - 1)``.
        - 'binomial': ``1 + Binomial(n, 1 - p)`` with ``n = (rate - 1) /
          (1 - p)`` (rounded at random, as above, so that the mean is
          ``rate``), where ``p`` is the share of the draws that go to the new
          slot: its streamer's weight over the active slots' weights once it
          is open (at the start, over the slots filled so far). With
          ``p > 0.9999`` (a single slot), 'poisson'. Its variance,
          ``(rate - 1) p``, lies between the constant budget's (0) and the
          Poisson budget's (``rate - 1``): the more active slots, the more
          even the budgets, which keeps each active stream's share of the
          items closer to its weight (see the docs' StochasticMux
          analysis), while a lone slot still gets random budgets.

        With ``rate < 1``, the last three give one item per activation.

    Raises
    ------
    PescadorError
        For an empty or invalid ``streamers``, invalid ``weights``, ``mode``,
        ``n_active``, ``rate``, ``random_state`` or ``dist``.

    Examples
    --------
    >>> import pescador
    >>> mux = pescador.StochasticMux(['aaaa', 'bbbb', 'cccc'], n_active=2,
    ...                              rate=None, mode='exhaustive',
    ...                              random_state=0)
    >>> ''.join(mux)
    'accaaaccbbbb'
    >>> xyz = [pescador.Streamer(letter * 100) for letter in 'xyz']
    >>> mux = pescador.StochasticMux(xyz, n_active=2, rate=2, random_state=1)
    >>> ''.join(mux(max_iter=30))
    'zzzyyzzyxzzzzzxzxzxxxyxxyxxxxz'
    """

    def __init__(self, streamers: Iterable[Any], n_active: int,
                 rate: Optional[float], weights: Optional[ArrayLike] = None,
                 mode: str = "with_replacement",
                 prune_empty_streams: bool = True,
                 random_state: RandomStateLike = None,
                 dist: Optional[str] = None) -> None:
        super().__init__(streamers, random_state)
        self.n_active = _check_n_active(n_active)
        self.rate = _check_rate(rate)
        self.weights = _check_weights(weights, len(self.streamers))
        self.mode = _check_choice(
            "mode", mode, ("with_replacement", "single_active", "exhaustive"))
        self.prune_empty_streams = bool(prune_empty_streams)
        self.dist = _check_choice("dist", dist, _BUDGETS)

    def _start(self):
        self._setup()
        if self.mode == "exhaustive":
            self._draws = self._block("draws")
        for k in range(self.n_active):
            self._fill(k)
        self._set_bounds()

    def _setup(self):
        n = self.n_active
        self._init_slots(n)
        self._pool = self.weights.copy()    # drawable weights
        self._draws = iter(())              # pre-drawn pool indices
        self._budgets = iter(())            # pre-drawn budgets
        self._owner = [None] * n
        self._busy = set()                  # not drawable for now
        self._dry = set()                   # empty since the last success
        self._weight = [0.0] * n            # of each slot, for the draws
        self._bounds = [0.0] * (n - 1)      # their normalised cumsum

    def _schedule(self):
        if not any(self._weight):
            return None
        # The bounds list is updated in place when a slot changes, so the
        # block stays valid.
        return map(bisect_right, repeat(self._bounds),
                   self._block("schedule"))

    def _draw_schedule(self):
        return self.rng.random(_BLOCK).tolist()

    def _draw_draws(self):
        if self.mode == "exhaustive":
            return _weighted_order(self.rng, self._pool)
        return _weighted_indices(self.rng, self._pool, _BLOCK)

    def _draw_budgets(self):
        return _budget_block(self.rng, self.rate, self.dist)

    def _policy_state(self):
        return {"owner": list(self._owner),
                "pruned": np.flatnonzero(self._pool != self.weights).tolist(),
                "dry": sorted(self._dry)}

    def _restore(self, policy, slots):
        check_keys(policy, ("owner", "pruned", "dry"), repr(self))
        if len(slots) != self.n_active:
            raise mismatch("a StochasticMux with n_active", self.n_active,
                           len(slots))
        self._setup()
        self._pool[policy["pruned"]] = 0.0
        self._dry = set(policy["dry"])
        for k, (i, slot) in enumerate(zip(policy["owner"], slots)):
            if i is not None and slot is not None:
                self._reopen(k, self.streamers[i], slot)
                self._owner[k] = i
                self._weight[k] = self.weights[i]
                if self.mode == "single_active":
                    self._busy.add(i)
        self._draws = self._resume_block("draws") or iter(())
        self._budgets = self._resume_block("budgets") or iter(())
        self._set_bounds()
        schedule = self._resume_block("schedule")
        if schedule is None:
            return self._schedule()
        return map(bisect_right, repeat(self._bounds), schedule)

    def _on_dry(self, k):
        if self._fill(k):
            self._set_bounds()
        return not any(self._weight)

    def _set_bounds(self):
        # Slot k is drawn for a uniform u in [bounds[k-1], bounds[k]); an
        # empty slot's interval is empty, exactly, since the same running
        # sums give both its ends and the total.
        cumulative = list(accumulate(self._weight))
        if cumulative[-1]:
            self._bounds[:] = [c / cumulative[-1] for c in cumulative[:-1]]

    def _fill(self, k):
        """Refill slot ``k``; return True if its weight changed."""
        self._busy.discard(self._owner[k])
        self._owner[k] = None
        self._close(k)
        while True:
            i = self._draw()
            if i is None:
                break
            if self._open(k, self.streamers[i], self._budget(i, k)):
                self._owner[k] = i
                self._dry.clear()
                if self.mode == "single_active":
                    self._busy.add(i)
                break
            if self.mode == "exhaustive":
                continue        # each streamer is drawn once anyway
            if self.prune_empty_streams:
                self._retire(i)
            else:
                self._dry.add(i)
        weight = 0.0 if i is None else self.weights[i]
        changed, self._weight[k] = self._weight[k] != weight, weight
        return changed

    def _retire(self, i):
        self._pool[i] = 0.0
        self._draws = self._drop_block("draws")
        if self._debug:
            _logger.debug("%r: pruned streamers[%d], %s: it yielded nothing",
                          self, i, _name(self.streamers[i]))

    def _draw(self):
        """A pool index, by weight, among those not busy or dry; or None."""
        if self.mode == "exhaustive":
            # Drawn in full at the start: the pool is only ever used up.
            return next(self._draws, None)
        blocked = self._busy | self._dry if self._dry else self._busy
        for _ in range(_TRIES):
            i = next(self._draws, None)
            if i is None:
                if not self._pool.any():
                    return None
                self._draws = self._block("draws")
                i = next(self._draws)
            if i not in blocked:
                return i
        # Most of the pool is blocked: draw exactly among the rest.
        weights = self._pool.copy()
        weights[list(blocked)] = 0.0
        if not weights.any():
            return None
        return _weighted_indices(self.rng, weights, 1)[0]

    def _budget(self, i, k):
        """The budget of streamer ``i`` opening in slot ``k`` (see
        `_budgets`), or None to run it to exhaustion."""
        if self.rate is None:
            return None
        if self.dist == "binomial":
            # The new slot's share p of the draws once it is open.
            others = sum(self._weight) - self._weight[k]
            p = self.weights[i] / (others + self.weights[i])
            if p <= _BINOMIAL_MAX_SHARE:
                return _binomial_budget(self.rng, self.rate, p)
        budget = next(self._budgets, None)
        if budget is None:
            self._budgets = self._block("budgets")
            budget = next(self._budgets)
        return budget


# -- budgets of StochasticMux -------------------------------------------------

_BUDGETS = (None, "constant", "poisson", "binomial")
# Above this share of the draws, "binomial" is "poisson" (its limit).
_BINOMIAL_MAX_SHARE = 0.9999


def _budget_block(rng, rate, dist):
    """A block of budgets (ints >= 1) of the mean ``rate`` (2.0's budget:
    ``1 + rate``); "binomial" here is its limit for one slot, "poisson".
    The 3.0 budgets give one item per activation when ``rate <= 1``."""
    if dist is None:
        return (rng.poisson(rate, _BLOCK) + 1).tolist()
    if dist in ("poisson", "binomial"):
        return (rng.poisson(max(rate - 1.0, 0.0), _BLOCK) + 1).tolist()
    return (np.maximum(_round_at_random(rng, rate, _BLOCK), 1)).tolist()


def _binomial_budget(rng, rate, p):
    """``1 + Binomial(n, 1 - p)`` with ``n = (rate - 1) / (1 - p)`` rounded
    at random, so that the mean is exactly ``rate`` (at least 1)."""
    n = _round_at_random(rng, max(rate - 1.0, 0.0) / (1.0 - p), 1)[0]
    return 1 + int(rng.binomial(n, 1.0 - p))


def _round_at_random(rng, x, size):
    """``size`` ints, each ``floor(x)`` or ``floor(x) + 1``, of mean ``x``."""
    whole = np.floor(x)
    if whole == x:
        return np.full(size, int(x))
    return (whole + (rng.random(size) < x - whole)).astype(int)


def _weighted_order(rng, weights):
    """The indices of non-zero ``weights`` in the order of successive draws
    without replacement, each with probability proportional to its weight
    among those left (exponential clocks: the first to ring is drawn
    first), as a list of ints."""
    candidates = np.flatnonzero(weights)
    clocks = rng.standard_exponential(len(candidates)) / weights[candidates]
    return candidates[np.argsort(clocks, kind="stable")].tolist()


def _check_n_active(n_active):
    n_active = _check_positive_int(n_active, "n_active")
    if n_active > _MAX_ACTIVE:
        raise PescadorError(
            "Invalid n_active={!r}: expected at most {:,} slots (each slot "
            "holds an open streamer)".format(n_active, _MAX_ACTIVE))
    return n_active


# Every slot takes memory at once, at the start.
_MAX_ACTIVE = 2 ** 24


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
