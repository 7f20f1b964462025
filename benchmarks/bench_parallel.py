"""Benchmark the parallel executors on CPU-heavy items.

A `ChainMux` of streams whose items each cost a few milliseconds of CPU
(FFTs: single-threaded, so one worker uses one core) runs through each
contender; for each we measure the steady throughput (items/s, from the
first item to the last) and the time to the first item. Every figure in
the table is also given as a ratio to a baseline measured in the same run
(the stream iterated in process, on one core), and the contenders run one
after another in interleaved rounds (the order alternates), since a 2-core
machine shared with others drifts by tens of percent between runs.

Contenders (one function each, in `CONTENDERS`; add more there):

- ``in process``: the stream itself, the baseline;
- ``ZMQStreamer x2``: ``ZMQStreamer(mux, n_workers=2)`` when ZMQStreamer
  takes ``n_workers``, else one background worker (the table says which);
- ``RayStreamer x2``: ``RayStreamer(mux, n_workers=2)`` on a local Ray
  cluster of 2 CPUs, started once before the rounds (its start-up time is
  reported apart); the first iteration also starts Ray's worker processes,
  so its time to first item is reported apart too ("cold").

Run: ``python benchmarks/bench_parallel.py [--quick]``.
"""

import argparse
import inspect
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import pescador  # noqa: E402
from harness import print_table  # noqa: E402

N_STREAMS = 8
FRAME = 4096


def heavy(stream_id, n_items, n_ffts):
    """Yield n_items dicts ``{'X': float32 spectrum}``, each costing
    ``n_ffts`` FFTs of FRAME samples (about 40 us each here)."""
    rng = np.random.default_rng(stream_id)
    signal = rng.standard_normal(FRAME)
    for _ in range(n_items):
        spectrum = np.zeros(FRAME // 2 + 1)
        for _ in range(n_ffts):
            spectrum += np.abs(np.fft.rfft(signal))
            signal = np.roll(signal, 1)
        yield {"X": spectrum.astype(np.float32)}


def make_stream(n_items, n_ffts):
    """The stream every contender runs: a splittable mux of N_STREAMS."""
    per_stream = -(-n_items // N_STREAMS)
    return pescador.ChainMux([
        pescador.Streamer(heavy, s, per_stream, n_ffts)
        for s in range(N_STREAMS)])


def timed(iterable, n_items):
    """(seconds to the first item, items/s after it) over n_items."""
    start = time.perf_counter()
    items = iter(iterable)
    next(items)
    first = time.perf_counter()
    taken = 1
    for _ in items:
        taken += 1
        if taken == n_items:
            break
    end = time.perf_counter()
    close = getattr(items, "close", None)
    if close is not None:
        close()
    return first - start, (taken - 1) / (end - first)


# -- the contenders: each takes (stream, n_items), returns timed(...) ------

def in_process(stream, n_items):
    return timed(stream.iterate(), n_items)


def zmq_pool_size():
    """2 if ZMQStreamer has its worker pool (``n_workers``), else 1."""
    parameters = inspect.signature(pescador.ZMQStreamer).parameters
    return 2 if "n_workers" in parameters else 1


def zmq_streamer(stream, n_items):
    if zmq_pool_size() == 2:
        zmq = pescador.ZMQStreamer(stream, n_workers=2)
    else:
        zmq = pescador.ZMQStreamer(stream)
    return timed(zmq.iterate(), n_items)


def ray_streamer(stream, n_items):
    from pescador.adapters import RayStreamer
    return timed(RayStreamer(stream, n_workers=2).iterate(), n_items)


CONTENDERS = {
    "in process": in_process,
    "ZMQStreamer x{}".format(zmq_pool_size()): zmq_streamer,
    "RayStreamer x2": ray_streamer,
}
BASELINE = "in process"


def start_ray():
    """Start a local Ray cluster of 2 CPUs; return the seconds it took and
    the seconds to the first item of a first (cold) RayStreamer run."""
    import ray
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    started = time.perf_counter() - start
    cold, _ = ray_streamer(make_stream(16, 1), 16)
    return started, cold


def spread(values, fmt="{:.2f}"):
    """'median [min-max]' of values."""
    return (fmt + " [" + fmt + "-" + fmt + "]").format(
        statistics.median(values), min(values), max(values))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer and shorter rounds (CI, docs)")
    parser.add_argument("--ffts", type=int, default=100,
                        help="FFTs per item (its CPU cost)")
    args = parser.parse_args(argv)
    rounds, n_items = (3, 150) if args.quick else (5, 400)
    started, cold = start_ray()
    names = list(CONTENDERS)
    runs = []
    for round_ in range(rounds):
        order = names if round_ % 2 == 0 else names[::-1]
        runs.append({name: CONTENDERS[name](make_stream(n_items, args.ffts),
                                            n_items)
                     for name in order})
    rows = []
    for name in names:
        rates = [run[name][1] for run in runs]
        rows.append([
            name, "{:.0f}".format(statistics.median(rates)),
            spread([run[name][1] / run[BASELINE][1] for run in runs]),
            spread([run[name][1] / run[names[1]][1] for run in runs]),
            "{:.1f}".format(min(run[name][0] for run in runs) * 1e3)])
    print_table(
        "{} items of {} FFTs each, {} interleaved rounds: median [min-max] "
        "of the per-round ratios ({} CPUs; ZMQStreamer {})".format(
            n_items, args.ffts, rounds, os.cpu_count(),
            "with n_workers=2" if zmq_pool_size() == 2 else
            "has no n_workers here: one background worker"),
        ["contender", "items/s", "/ " + BASELINE, "/ " + names[1],
         "first item ms (best)"], rows)
    print("\nRay: local cluster started in {:.1f} s; first RayStreamer "
          "item, cold (worker processes starting): {:.0f} ms".format(
              started, cold * 1e3))
    return runs


if __name__ == "__main__":
    main()
