"""Benchmark: Streamer.iterate and the muxes against a plain generator.

Run ``python benchmarks/bench_mux.py`` from the repository root. Each row is
the throughput of small items (ints) through pescador, as a ratio to a plain
generator of the same items measured in the same run (1.0 = as fast; the
issue's target is the floor in the last column).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import pescador  # noqa: E402
from harness import items_per_second, print_table  # noqa: E402

N_ITEMS = 200_000


def count(n):
    """The baseline: a plain generator of n ints."""
    yield from range(n)


def forever(value):
    """An endless stream of one value."""
    while True:
        yield value


def cases():
    """(name, make_iterable, target ratio) for each row."""
    ten = [pescador.Streamer(forever, i) for i in range(10)]
    hundred = [pescador.Streamer(forever, i) for i in range(100)]
    chained = [pescador.Streamer(count, 1000) for _ in range(100)]
    return [
        ("Streamer.iterate", lambda: pescador.Streamer(
            count, N_ITEMS).iterate(), 1 / 1.5),
        ("Streamer.iterate(max_iter)", lambda: pescador.Streamer(
            count, N_ITEMS).iterate(max_iter=N_ITEMS), 1 / 1.5),
        ("ShuffledMux(10)", lambda: pescador.ShuffledMux(
            ten, random_state=0).iterate(), 1 / 20),
        ("ShuffledMux(10, weights)", lambda: pescador.ShuffledMux(
            ten, weights=range(1, 11), random_state=0).iterate(), 1 / 20),
        ("StochasticMux(100, 10, 64)", lambda: pescador.StochasticMux(
            hundred, n_active=10, rate=64, random_state=0).iterate(), 1 / 20),
        ("StochasticMux(.., weights)", lambda: pescador.StochasticMux(
            hundred, n_active=10, rate=64, weights=range(1, 101),
            random_state=0).iterate(), 1 / 20),
        ("StochasticMux(.., single)", lambda: pescador.StochasticMux(
            hundred, n_active=10, rate=64, mode="single_active",
            random_state=0).iterate(), 1 / 20),
        ("RoundRobinMux(10, cycle)", lambda: pescador.RoundRobinMux(
            ten, mode="cycle").iterate(), 1 / 10),
        ("ChainMux(100 x 1000)", lambda: pescador.ChainMux(
            chained).iterate(), 1 / 4),
    ]


def main(repeat=5):
    baseline = items_per_second(lambda: count(N_ITEMS), N_ITEMS, repeat)
    rows = [("plain generator", "{:,.0f}".format(baseline), "1.00", "")]
    for name, make, target in cases():
        rate = items_per_second(make, N_ITEMS, repeat)
        ratio = rate / baseline
        rows.append((name, "{:,.0f}".format(rate), "{:.2f}".format(ratio),
                     "1/{:.3g} {}".format(1 / target, "ok" if ratio >= target
                                          else "MISSED")))
    print_table("Items/s of small items, ratio to a plain generator "
                "({:,} items, best of {})".format(N_ITEMS, repeat),
                ("case", "items/s", "ratio", "target"), rows)


if __name__ == "__main__":
    main()
