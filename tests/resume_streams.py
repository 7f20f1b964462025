"""Streams for the checkpoint tests, built the same way in the test process
and in the fresh subprocess that resumes them (``python -m
tests.resume_streams`` reads a JSON list of jobs on stdin)."""

import json
import sys

from pescador import (ChainMux, RoundRobinMux, ShuffledMux, StochasticMux,
                      Streamer)

# Items produced by `counted` generators in this process.
PRODUCED = [0]


def counted(tag, n):
    """``n`` items ``[tag, i]``, counting each in PRODUCED."""
    for i in range(n):
        PRODUCED[0] += 1
        yield [tag, i]


def S(tag, n):
    return Streamer(counted, tag, n)


def lazy_streamers():
    for i in range(5):
        yield S(i, 4)


def _nested():
    inner = [ShuffledMux([S([j, i], 20) for i in range(3)], random_state=j)
             for j in range(3)]
    rotation = RoundRobinMux([S(["r", i], 5) for i in range(3)],
                             mode="permuted_cycle", random_state=9)
    return StochasticMux(inner + [rotation], 2, rate=6, random_state=8)


# name -> (builder, finite)
STREAMS = {
    "stochastic": (lambda: StochasticMux(
        [S(i, 50) for i in range(6)], 3, rate=4, random_state=1), False),
    "stochastic_single": (lambda: StochasticMux(
        [S(i, 50) for i in range(6)], 3, rate=4, mode="single_active",
        random_state=2), False),
    "stochastic_exhaustive": (lambda: StochasticMux(
        [S(i, 30) for i in range(6)], 2, rate=None, mode="exhaustive",
        random_state=3), True),
    "stochastic_exhaustive_rate": (lambda: StochasticMux(
        [S(i, 30) for i in range(6)], 2, rate=3, mode="exhaustive",
        random_state=3), True),
    "stochastic_binomial": (lambda: StochasticMux(
        [S(i, 50) for i in range(6)], 3, rate=5, dist="binomial",
        weights=[1, 2, 3, 4, 5, 6], random_state=4), False),
    "stochastic_constant": (lambda: StochasticMux(
        [S(i, 50) for i in range(6)], 3, rate=5.5, dist="constant",
        random_state=np_random_state(4)), False),
    "stochastic_generator": (lambda: StochasticMux(
        [S(i, 50) for i in range(6)], 3, rate=5, dist="poisson",
        random_state=np_generator(4)), False),
    "stochastic_pruned": (lambda: StochasticMux(
        [S(i, 5 * (i % 2)) for i in range(6)], 3, rate=2,
        random_state=5), False),
    "shuffled": (lambda: ShuffledMux(
        [S(i, 7 + i) for i in range(4)], weights=[1, 2, 3, 4],
        random_state=6), False),
    "round_robin": (lambda: RoundRobinMux(
        [S(i, 3 + i) for i in range(4)]), True),
    "round_robin_cycle": (lambda: RoundRobinMux(
        [S(i, 3 + i) for i in range(4)], mode="cycle"), False),
    "round_robin_permuted": (lambda: RoundRobinMux(
        [S(i, 3 + i) for i in range(4)], mode="permuted_cycle",
        random_state=7), False),
    "chain": (lambda: ChainMux([S(i, 3 + i) for i in range(5)]), True),
    "chain_cycle": (lambda: ChainMux([S(i, 3 + i) for i in range(5)],
                                     mode="cycle"), False),
    "chain_lazy": (lambda: ChainMux(lazy_streamers, mode="cycle"), False),
    "nested": (_nested, False),
    "chain_of_muxes": (lambda: ChainMux([StochasticMux(
        [S([j, i], 10) for i in range(3)], 2, rate=3, mode="exhaustive",
        random_state=j) for j in range(3)]), True),
    "streamer_of_mux": (lambda: Streamer(StochasticMux(
        [S(i, 9) for i in range(3)], 2, 2, mode="exhaustive",
        random_state=1)), True),
    "plain": (lambda: S("p", 40), True),
}


def np_random_state(seed):
    import numpy as np
    return np.random.RandomState(seed)


def np_generator(seed):
    import numpy as np
    return np.random.default_rng(seed)


def build(name):
    return STREAMS[name][0]()


def run(job):
    """Resume ``job["state"]`` on a fresh stream ``job["name"]`` with
    ``job["call"]`` and ``job["kwargs"]``: the rest of that iteration, the
    next epoch's first ``job["epoch_items"]`` items, and how many items the
    generators produced to resume (before the first item was taken)."""
    stream = build(job["name"])
    PRODUCED[0] = 0
    resumed = getattr(stream, job["call"])(state=job["state"],
                                           **job["kwargs"])
    rest = []
    for item in resumed:
        if not rest:
            cost = PRODUCED[0] - 1
        rest.append(item)
    if not rest:
        cost = PRODUCED[0]
    epoch = list(stream.iterate(max_iter=job["epoch_items"]))
    return {"rest": rest, "epoch": epoch, "cost": cost}


if __name__ == "__main__":
    jobs = json.load(sys.stdin)
    json.dump([run(job) for job in jobs], sys.stdout)
