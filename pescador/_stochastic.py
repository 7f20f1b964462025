"""`StochasticMux`: a few streamers active at a time, drawn at random, each
for a random budget of items (re-exported by `pescador.mux`)."""

from bisect import bisect_right
from itertools import accumulate, repeat
from typing import Any, Iterable, Optional

import numpy as np
from numpy.typing import ArrayLike

from ._mux_base import BaseMux, _BLOCK, _TRIES, _logger
from ._mux_checks import _check_rate, _check_weights, _weighted_indices
from ._mux_tree import _name
from .exceptions import PescadorError
from .state import check_keys, mismatch
from .util import RandomStateLike, _check_choice, _check_positive_int

__all__ = ["StochasticMux"]


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
