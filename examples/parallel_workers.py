"""
A pool of workers: ``ZMQStreamer(n_workers=k)``
===============================================

When making each item costs CPU (decoding audio, computing features,
augmenting images), one background process uses one core.
``ZMQStreamer(mux, n_workers=k)`` starts ``k`` worker processes: worker
``i`` runs share ``i`` of the mux (its streamers ``i``, ``i + k``, ...),
and the consumer merges their items.

This example measures the items per second of a CPU-heavy stream (each item
costs a number of FFTs) in process and with 1 to ``--max-workers`` workers,
and plots them: the throughput grows with the workers up to the number of
cores (this figure is measured while the documentation is built, on a
machine that may be busy; the benchmark ``benchmarks/bench_parallel.py``
gives ratios measured in interleaved rounds).

With ``ordered=True`` (the default), the merge does not depend on timing:
a seeded stream yields the same items in the same order at every run with
the same number of workers, which the example checks too.
"""

import argparse
import os
import statistics
import time
from itertools import islice

import matplotlib.pyplot as plt
import numpy as np

import pescador

FRAME = 4096


def spectra(stream_id, n_ffts):
    """A "file": items whose spectrum costs ``n_ffts`` FFTs each."""
    rng = np.random.default_rng(stream_id)
    signal = rng.standard_normal(FRAME)
    while True:
        spectrum = np.zeros(FRAME // 2 + 1)
        for _ in range(n_ffts):
            spectrum += np.abs(np.fft.rfft(signal))
            signal = np.roll(signal, 1)
        yield {"X": spectrum.astype(np.float32), "Y": np.array(stream_id)}


def mux(n_ffts, seed=0, n_files=8):
    """Eight files mixed at random: a stream that splits into shares."""
    return pescador.StochasticMux(
        [pescador.Streamer(spectra, i, n_ffts) for i in range(n_files)],
        n_active=4, rate=16, random_state=seed)


def items_per_second(stream, n_items):
    """Items/s from the first item to the last (start-up excluded)."""
    items = stream.iterate(max_iter=n_items)
    next(items)
    start = time.perf_counter()
    taken = sum(1 for _ in items)
    return taken / (time.perf_counter() - start)


def main(argv=None):
    """Measure items/s against workers; plot them; return the figures."""
    parser = argparse.ArgumentParser(
        description="Items/s of ZMQStreamer against n_workers")
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--ffts", type=int, default=50,
                        help="FFTs per item (its CPU cost)")
    parser.add_argument("--max-workers", type=int,
                        default=max(2, min(4, os.cpu_count() or 1)))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    workers = list(range(1, args.max_workers + 1))
    rates = {n: [] for n in [0] + workers}  # 0: in process
    for round_ in range(args.rounds):
        order = list(rates) if round_ % 2 == 0 else list(rates)[::-1]
        for n in order:
            stream = mux(args.ffts) if n == 0 else pescador.ZMQStreamer(
                mux(args.ffts), n_workers=n)
            rates[n].append(items_per_second(stream, args.items))
    medians = {n: statistics.median(values) for n, values in rates.items()}
    for n, rate in medians.items():
        print("{:>12}: {:7.0f} items/s".format(
            "in process" if n == 0 else "{} worker{}".format(
                n, "s" * (n > 1)), rate))

    # Ordered merges are reproducible, whatever the workers' timing.
    runs = [[int(item["Y"]) for item in islice(pescador.ZMQStreamer(
        mux(1, seed=5), n_workers=2), 50)] for _ in range(2)]
    print("same items in the same order in two runs:", runs[0] == runs[1])

    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.plot(workers, [medians[n] for n in workers], "o-",
              label="ZMQStreamer(n_workers=k)")
    axes.axhline(medians[0], color="gray", linestyle="--",
                 label="in process")
    axes.set_xticks(workers)
    axes.set_xlabel("workers (k)")
    axes.set_ylabel("items / s")
    axes.set_ylim(bottom=0)
    axes.set_title("{} FFTs per item, {} CPUs".format(args.ffts,
                                                      os.cpu_count()))
    axes.legend(loc="lower right")
    figure.tight_layout()
    plt.show()
    return dict(rates=medians, reproducible=runs[0] == runs[1])


if __name__ == "__main__":
    main()
