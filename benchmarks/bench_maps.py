"""Benchmark: batches per second of `pescador.buffer_stream`.

Run from the repository root: ``python benchmarks/bench_maps.py``.

Each case streams the same 64 pre-built items over and over, so every
batch stacks exactly the 64 arrays that the floor stacks: the floor is a
bare ``np.stack`` of those arrays, one call per key (the least work any
batching must do), yielded by a plain generator. The figure that matters is
the ratio of the time per batch to that floor (target: at most 1.5).

The floor is consumed like a stream because that matters for large
batches: a consumer's loop variable keeps the previous batch alive while the
next is built, so a fresh 3 MB block is allocated (and page-faulted) every
time. The row "np.stack, result dropped" shows the same stacks when each
result is freed at once and its warm memory reused.

Two more rows explain the implementation choice in `pescador.maps`:
``np.array`` of the same list (what buffer_stream calls, being faster than
``np.stack`` for small arrays), and a variant that writes each item into a
preallocated array per key as it arrives.
"""

import os
import sys
from itertools import cycle, islice

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from harness import best_time, consume, print_table  # noqa: E402

import pescador  # noqa: E402

BUFFER_SIZE = 64

CASES = {
    "X f32 (128,) + Y i64 ()": lambda i, rng: {
        "X": rng.standard_normal(128).astype(np.float32),
        "Y": np.int64(i)},
    "X f32 (64, 64, 3)": lambda i, rng: {
        "X": rng.standard_normal((64, 64, 3)).astype(np.float32)},
}


def preallocated_buffer(stream, buffer_size):
    """The alternative design: write each item into one preallocated
    array per key as it arrives (no checks; for comparison only)."""
    stream = iter(stream)
    while True:
        first = next(stream, None)
        if first is None:
            return
        out = {key: np.empty((buffer_size,) + np.shape(value),
                             np.asarray(value).dtype)
               for key, value in first.items()}
        for key, value in first.items():
            out[key][0] = value
        for i, item in enumerate(islice(stream, buffer_size - 1), 1):
            for key, value in item.items():
                out[key][i] = value
        yield out


def run_case(make_item, n_batches, repeat):
    rng = np.random.RandomState(0)
    items = [make_item(i, rng) for i in range(BUFFER_SIZE)]
    columns = {key: [item[key] for item in items] for key in items[0]}

    def per_batch(make_stream):
        return best_time(lambda: consume(make_stream(cycle(items)),
                                         n_batches), repeat) / n_batches

    def bare(stack):
        for _ in range(n_batches):
            yield {key: stack(c) for key, c in columns.items()}

    floor = best_time(lambda: consume(bare(np.stack)), repeat) / n_batches
    return floor, {
        "np.stack, result dropped": best_time(
            lambda: [np.stack(c) for c in columns.values()], repeat,
            number=n_batches),
        "np.array of the list": best_time(
            lambda: consume(bare(np.array)), repeat) / n_batches,
        "buffer_stream": per_batch(
            lambda s: pescador.buffer_stream(s, BUFFER_SIZE)),
        "preallocated variant": per_batch(
            lambda s: preallocated_buffer(s, BUFFER_SIZE)),
    }


def main(n_batches=200, repeat=5):
    rows = []
    for name, make_item in CASES.items():
        floor, timings = run_case(make_item, n_batches, repeat)
        rows.append((name, "np.stack floor", "{:.0f}".format(1 / floor),
                     "1.00"))
        for what, seconds in timings.items():
            rows.append((name, what, "{:.0f}".format(1 / seconds),
                         "{:.2f}".format(seconds / floor)))
    print_table("buffer_stream(buffer_size={}): time per batch / np.stack "
                "floor (lower is better; target <= 1.5)".format(BUFFER_SIZE),
                ["items", "method", "batches/s", "ratio"], rows)


if __name__ == "__main__":
    main()
