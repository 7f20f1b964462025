"""Statistical tests of the random muxes, ShuffledMux and StochasticMux.

Each uses a fixed seed and a test with a stated tolerance: chi-square
p > 1e-3, or a mean and a variance within 4 standard errors.
"""

import collections
from itertools import islice

import numpy as np
import pytest
import scipy.stats

from pescador import PescadorError, ShuffledMux, StochasticMux, Streamer

from .streams import constant, count, empty, labelled
from .test_mux import P_MIN, Tracker, constants, take, tracked


# -- ShuffledMux -------------------------------------------------------------

def test_shuffled_frequencies_match_weights():
    weights = [0.1, 0.2, 0.3, 0.4]
    n = 20000
    mux = ShuffledMux(constants(range(4)), weights=weights, random_state=7)
    counts = np.bincount(take(mux, n), minlength=4)
    assert scipy.stats.chisquare(counts, n * np.array(weights)).pvalue > P_MIN


def test_shuffled_zero_weight_never_drawn_nor_activated():
    tracker = Tracker()
    streamers = [Streamer(tracked, tracker, i) for i in range(3)]
    mux = ShuffledMux(streamers, weights=[1, 0, 1], random_state=0)
    assert set(take(mux, 2000)) == {0, 2}
    assert tracker.started[1] == 0


def test_shuffled_int_weights_same_as_equal_floats():
    a = ShuffledMux(constants("abc"), weights=[1, 2, 1], random_state=5)
    b = ShuffledMux(constants("abc"), weights=[1.0, 2.0, 1.0], random_state=5)
    assert take(a, 500) == take(b, 500)


def test_shuffled_restarts_exhausted_and_drops_empty():
    tracker = Tracker()
    streamers = [Streamer(tracked, tracker, "a", 2), Streamer([]),
                 Streamer(tracked, tracker, "b", 3)]
    out = take(ShuffledMux(streamers, random_state=1), 3000)
    counts = collections.Counter(out)
    assert set(counts) == {"a", "b"}
    # Each activation of "a" gives its two items, then is restarted (the
    # last one may be cut short by max_iter): so exactly ceil(count / 2)
    # activations, each but the last of two items.
    assert tracker.started["a"] == -(-counts["a"] // 2)
    assert tracker.budgets["a"][:-1] == [2] * (tracker.started["a"] - 1)
    # a and b are drawn alike, since the empty streamer was dropped
    assert scipy.stats.chisquare([counts["a"], counts["b"]]).pvalue > P_MIN


def test_shuffled_ends_when_every_streamer_runs_dry():
    # A streamer over an iterator can be used only once: its restart is
    # empty, so it is dropped; then the mux ends.
    mux = ShuffledMux([Streamer(iter("ab")), Streamer(iter("xyz"))],
                      random_state=0)
    assert sorted(mux) == list("abxyz")
    assert list(ShuffledMux([[], ""])) == []


def test_talk_example_runs():
    streams = [Streamer(constant, value) for value in "ABCDE"]
    train_gen = ShuffledMux(streams)
    samples = []
    for value in train_gen(max_iter=200):
        samples.append(value)
    assert len(samples) == 200 and set(samples) == set("ABCDE")


# -- StochasticMux -----------------------------------------------------------

def test_stochastic_long_run_shares_match_weights():
    weights = np.array([1.0, 2.0, 3.0, 4.0]) / 10
    n, rate = 60000, 4
    mux = StochasticMux([Streamer(labelled, i) for i in range(4)],
                        n_active=2, rate=rate, weights=weights,
                        random_state=11)
    out = take(mux, n)
    labels = np.array([item["label"] for item in out])
    items = np.bincount(labels, minlength=4)
    # Items come in runs (one per activation), which inflates the variance
    # of the counts by about E[B^2] / E[B] for budgets B = 1 + Poisson(rate)
    # (a renewal-reward argument); scale Pearson's statistic down by it.
    inflation = (rate + (1 + rate) ** 2) / (1 + rate)
    stat = ((items - n * weights) ** 2 / (n * weights)).sum() / inflation
    assert scipy.stats.chi2.sf(stat, df=3) > P_MIN
    # Pool draws are independent, so activations (the items whose restart
    # counter is 0) are exactly multinomial.
    starts = np.bincount(labels[[item["i"] == 0 for item in out]],
                         minlength=4)
    expected = starts.sum() * weights
    assert scipy.stats.chisquare(starts, expected).pvalue > P_MIN


def test_stochastic_budgets_are_one_plus_poisson():
    rate = 6.0
    tracker = Tracker()
    streamers = [Streamer(tracked, tracker, i) for i in range(8)]
    mux = StochasticMux(streamers, n_active=3, rate=rate, random_state=2)
    it = mux.iterate()
    for _ in islice(it, 25000):
        pass
    # Activations that ended while the mux ran spent their whole budget.
    budgets = np.array([b for log in tracker.budgets.values() for b in log])
    it.close()
    m = len(budgets)
    assert m > 3000 and budgets.min() >= 1
    assert abs(budgets.mean() - (1 + rate)) < 4 * np.sqrt(rate / m)
    # Var of a Poisson sample variance: (mu4 - sigma^4) / m.
    se_var = np.sqrt((rate * (1 + 3 * rate) - rate ** 2) / m)
    assert abs(budgets.var(ddof=1) - rate) < 4 * se_var
    # And the whole distribution: 1 + Poisson(rate), tail bins merged.
    edges = np.arange(1, 15)
    observed = np.bincount(np.minimum(budgets, 14), minlength=15)[1:]
    pmf = scipy.stats.poisson.pmf(edges[:-1] - 1, rate)
    expected = m * np.append(pmf, 1 - pmf.sum())
    assert scipy.stats.chisquare(observed, expected).pvalue > P_MIN


def activation_budgets(rate, dist, n_active=4, n_items=40000,
                       weights=None):
    """The items given by each activation of a StochasticMux over eight
    endless streamers (activations still open at the end left out)."""
    tracker = Tracker()
    streamers = [Streamer(tracked, tracker, i) for i in range(8)]
    mux = StochasticMux(streamers, n_active=n_active, rate=rate,
                        weights=weights, dist=dist, random_state=5)
    it = mux.iterate()
    for _ in islice(it, n_items):
        pass
    budgets = np.array([b for log in tracker.budgets.values() for b in log])
    it.close()
    return budgets


def assert_mean_and_variance(budgets, mean, var, mu4):
    """Sample mean and variance within 4 standard errors of ``mean`` and
    ``var`` (``mu4``: the fourth central moment, for the variance's)."""
    m = len(budgets)
    assert m > 2000 and budgets.min() >= 1
    assert abs(budgets.mean() - mean) < 4 * np.sqrt(var / m), \
        (budgets.mean(), mean)
    se_var = np.sqrt(max(mu4 - var ** 2, 0) / m)
    assert abs(budgets.var(ddof=1) - var) <= 4 * se_var, \
        (budgets.var(ddof=1), var)


def test_constant_budget_is_exactly_rate():
    budgets = activation_budgets(7, "constant")
    assert len(budgets) > 2000 and set(budgets.tolist()) == {7}


def test_constant_budget_of_a_fractional_rate_is_rounded_at_random():
    # floor(2.25) + Bernoulli(0.25): mean 2.25, variance 0.25 * 0.75.
    budgets = activation_budgets(2.25, "constant")
    assert set(budgets.tolist()) == {2, 3}
    q = 0.25
    assert_mean_and_variance(budgets, 2.25, q * (1 - q),
                             q * (1 - q) * (1 - 3 * q * (1 - q)))


def test_poisson_budget_is_one_plus_poisson_of_rate_minus_one():
    lam = 5.0
    budgets = activation_budgets(lam + 1, "poisson")
    assert_mean_and_variance(budgets, lam + 1, lam, lam * (1 + 3 * lam))


@pytest.mark.parametrize("n_active, weights", [(4, None), (2, None),
                                               (4, [1, 3] * 4)])
def test_binomial_budget(n_active, weights):
    # 1 + Binomial(n, 1 - p), n = (rate - 1) / (1 - p): mean rate,
    # variance (rate - 1) p. With equal weights p = 1 / n_active (n = 8
    # and 12 for rate 7: exact integers, no rounding).
    rate = 7
    if weights is None:
        budgets = activation_budgets(rate, "binomial", n_active)
        p = 1 / n_active
        n, q = (rate - 1) / (1 - p), 1 - p
        assert_mean_and_variance(
            budgets, rate, n * p * q,
            n * p * q * (1 + 3 * (n - 2) * p * q))
        # Bounded by n + 1, but for the first slots filled at the start,
        # whose p counts only the slots filled before them.
        assert (budgets > n + 1).sum() < n_active
        return
    # Unequal weights: p varies with the slots' streamers, but the mean
    # stays rate, and the variance is below the Poisson budget's (rate - 1).
    budgets = activation_budgets(rate, "binomial", n_active, weights=weights)
    m = len(budgets)
    assert abs(budgets.mean() - rate) < 4 * np.sqrt((rate - 1) / m)
    assert budgets.var(ddof=1) < 0.8 * (rate - 1)


def test_binomial_budget_of_one_slot_is_poisson():
    # p = 1 > 0.9999: the Poisson budget, 1 + Poisson(rate - 1).
    budgets = activation_budgets(6, "binomial", n_active=1)
    assert_mean_and_variance(budgets, 6, 5, 5 * (1 + 3 * 5))


@pytest.mark.parametrize("dist", ["constant", "poisson", "binomial"])
@pytest.mark.parametrize("rate", [0, 0.5, 1])
def test_budgets_of_rate_at_most_one_are_single_items(dist, rate):
    budgets = activation_budgets(rate, dist, n_items=2000)
    assert set(budgets.tolist()) == {1}


def test_dist_none_is_the_2_0_budget_and_unknown_dist_is_an_error():
    a = StochasticMux(constants("abcd"), 2, 3, random_state=0)
    b = StochasticMux(constants("abcd"), 2, 3, random_state=0, dist=None)
    assert a.dist is None and take(a, 500) == take(b, 500)
    for bad in ("uniform", "Poisson", 1, ["constant"]):
        with pytest.raises(PescadorError, match="dist="):
            StochasticMux(constants("ab"), 1, 3, dist=bad)


def test_stochastic_rate_none_runs_each_streamer_to_exhaustion():
    tracker = Tracker()
    streamers = [Streamer(tracked, tracker, i, 5) for i in range(4)]
    take(StochasticMux(streamers, 2, None, random_state=0), 400)
    assert all(b == 5 for log in tracker.budgets.values() for b in log[:-2])


def test_stochastic_rate_zero_gives_single_items():
    tracker = Tracker()
    streamers = [Streamer(tracked, tracker, i) for i in range(3)]
    mux = StochasticMux(streamers, 2, 0, random_state=0)
    take(mux, 300)
    assert {b for log in tracker.budgets.values() for b in log} == {1}


@pytest.mark.parametrize("n_active", [2, 4, 7])
def test_single_active_never_puts_a_streamer_in_two_slots(n_active):
    tracker = Tracker()
    streamers = [Streamer(tracked, tracker, i) for i in range(4)]
    mux = StochasticMux(streamers, n_active, rate=2, mode="single_active",
                        random_state=4)
    assert set(take(mux, 3000)) == set(range(4))
    assert max(tracker.peak.values()) == 1
    # The same run with replacement does share slots: the check can fail.
    tracker = Tracker()
    streamers = [Streamer(tracked, tracker, i) for i in range(4)]
    take(StochasticMux(streamers, n_active, rate=2, random_state=4), 3000)
    assert max(tracker.peak.values()) > 1


@pytest.mark.parametrize("n_active", [1, 3, 10])
def test_exhaustive_emits_every_item_exactly_once(n_active):
    streamers = [Streamer(count, n, start=100 * n) for n in range(6)]
    mux = StochasticMux(streamers, n_active, rate=None, mode="exhaustive",
                        random_state=9)
    out = list(mux)
    assert sorted(out) == sorted(i for n in range(6)
                                 for i in range(100 * n, 101 * n))
    assert len(out) == len(set(out))


def test_exhaustive_with_a_rate_activates_each_streamer_once():
    tracker = Tracker()
    streamers = [Streamer(tracked, tracker, i, 50) for i in range(6)]
    out = list(StochasticMux(streamers, 2, rate=3, mode="exhaustive",
                             random_state=0))
    assert tracker.started == {i: 1 for i in range(6)}
    assert len(out) == sum(log[0] for log in tracker.budgets.values())


def test_with_replacement_revives_finite_streamers_forever():
    mux = StochasticMux(["ab", "c"], 1, None, random_state=0)
    out = take(mux, 3000)
    assert len(out) == 3000 and set(out) == set("abc")


def test_prune_empty_streams():
    tracker = Tracker()
    streamers = [Streamer(tracked, tracker, "empty", 0),
                 Streamer(tracked, tracker, "full")]
    take(StochasticMux(streamers, 1, rate=1, random_state=0), 500)
    assert tracker.started["empty"] == 1
    tracker = Tracker()
    streamers = [Streamer(tracked, tracker, "empty", 0),
                 Streamer(tracked, tracker, "full")]
    take(StochasticMux(streamers, 1, rate=1, prune_empty_streams=False,
                       random_state=0), 500)
    assert tracker.started["empty"] > 10


@pytest.mark.parametrize("mode", ["with_replacement", "single_active",
                                  "exhaustive"])
@pytest.mark.parametrize("prune", [True, False])
def test_stochastic_ends_instead_of_spinning_when_all_are_empty(mode, prune):
    mux = StochasticMux([Streamer(empty), [], ""], 2, rate=3, mode=mode,
                        prune_empty_streams=prune, random_state=0)
    assert list(mux) == []


def test_stochastic_ends_when_pruned_streams_run_out():
    # Iterator sources yield once; their restarts are empty and pruned.
    mux = StochasticMux([Streamer(iter("ab")), Streamer(iter("cd"))], 3,
                        rate=None, random_state=0)
    assert sorted(mux) == list("abcd")


def test_n_active_larger_than_the_pool():
    mux = StochasticMux(["ab", "cd"], 5, None, mode="exhaustive",
                        random_state=0)
    assert sorted(mux) == list("abcd")
    # single_active revives a streamer once it has left its slot, so its
    # first items may repeat one; both stay in use.
    mux = StochasticMux(["ab", "cd"], 5, None, mode="single_active",
                        random_state=0)
    assert set(take(mux, 40)) == set("abcd")
    mux = StochasticMux(constants("ab"), 5, 2, random_state=0)
    assert set(take(mux, 100)) == set("ab")


def test_class_balanced_sampling():
    # One StochasticMux per class, balanced by a ShuffledMux.
    classes = [StochasticMux([Streamer(labelled, (c, i)) for i in range(k)],
                             2, 4, random_state=c)
               for c, k in enumerate([1, 5, 20])]
    out = take(ShuffledMux(classes, random_state=0), 6000)
    counts = np.bincount([item["label"][0] for item in out], minlength=3)
    assert scipy.stats.chisquare(counts).pvalue > P_MIN


@pytest.mark.parametrize("mode", ["with_replacement", "single_active"])
def test_stochastic_zero_weight_is_never_activated(mode):
    tracker = Tracker()
    streamers = [Streamer(tracked, tracker, i) for i in range(4)]
    mux = StochasticMux(streamers, 2, rate=1, weights=[1, 0, 2, 1],
                        mode=mode, random_state=0)
    assert set(take(mux, 2000)) == {0, 2, 3}
    assert tracker.started[1] == 0
