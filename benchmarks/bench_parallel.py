"""Benchmark the parallel executors on CPU-heavy items.

Part 1, the pool. A `ChainMux` of streams whose items each cost a few
milliseconds of CPU (FFTs: single-threaded, so one worker uses one core)
runs through each contender; for each we measure the steady throughput
(items/s, from the first item to the last) and the time to the first item.
Every figure is also given as a ratio to baselines measured in the same
run (the stream iterated in process, on one core; and ZMQStreamer with one
worker), and the contenders run one after another in interleaved rounds
(the order alternates), since a 2-core machine shared with others drifts
by tens of percent between runs. Contenders (one function each, in
`CONTENDERS`; add more there):

- ``in process``: the stream itself, the baseline;
- ``ZMQStreamer x1``, ``x2``, ``x2 unordered``:
  ``ZMQStreamer(mux, n_workers=k, ordered=...)``;
- ``RayStreamer x2``: ``RayStreamer(mux, n_workers=2)`` on a local Ray
  cluster of 2 CPUs, started once before the rounds (its start-up time is
  reported apart); the first iteration also starts Ray's worker processes,
  so its time to first item is reported apart too ("cold"). Skipped
  without Ray (or with ``--no-ray``).

Part 2, against PyTorch's ``DataLoader`` with the same number of workers,
on the same mixed and batched pipeline: files (one generator each) mixed
at random, then batched. Pescador: ``ZMQStreamer(Streamer(buffer_stream,
StochasticMux(files, ...), batch), n_workers=2)``. PyTorch: the idiomatic
``IterableDataset`` whose ``__iter__`` takes its worker's share of the
files (``files[worker.id::worker.num_workers]``) and mixes them at random,
under ``DataLoader(dataset, batch_size=batch, num_workers=2)`` (its default
collate stacks the items into tensors). Two cases: CPU-heavy small items
(8 KB spectra of 20 FFTs each) and 16 MB batches (1 MB items, little CPU).
The ratio is pescador's batches/s over PyTorch's, per round. Skipped
without torch.

`workers_curve` (items/s against the number of workers) is what
examples/parallel_workers.py plots in the docs.

Run: ``python benchmarks/bench_parallel.py [--quick] [--no-ray]
[--no-torch] [--part 1|2|all]`` (with the repository on ``PYTHONPATH``,
which Ray's workers need).
"""

import argparse
import os
import random
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
    """Yield n_items dicts ``{'X': float32 spectrum}`` (8 KB), each costing
    ``n_ffts`` FFTs of FRAME samples (about 40 us each here); forever
    when n_items is None."""
    rng = np.random.default_rng(stream_id)
    signal = rng.standard_normal(FRAME)
    i = 0
    while n_items is None or i < n_items:
        spectrum = np.zeros(FRAME // 2 + 1)
        for _ in range(n_ffts):
            spectrum += np.abs(np.fft.rfft(signal))
            signal = np.roll(signal, 1)
        yield {"X": spectrum.astype(np.float32)}
        i += 1


def large(stream_id, n_items, nbytes):
    """Yield dicts ``{'X': float32 array of nbytes}`` (little CPU each:
    one fill); forever when n_items is None."""
    i = 0
    while n_items is None or i < n_items:
        yield {"X": np.full(nbytes // 4, stream_id + i, dtype=np.float32)}
        i += 1


def make_stream(n_items, n_ffts):
    """The stream of part 1: a splittable mux of N_STREAMS."""
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


# -- part 1: each takes (stream, n_items), returns timed(...) ---------------

def in_process(stream, n_items):
    return timed(stream.iterate(), n_items)


def zmq_streamer(n_workers, ordered=True):
    """A contender: ZMQStreamer with ``n_workers``."""
    def run(stream, n_items):
        return timed(pescador.ZMQStreamer(stream, n_workers=n_workers,
                                          ordered=ordered).iterate(),
                     n_items)
    return run


def ray_streamer(stream, n_items):
    from pescador.adapters import RayStreamer
    return timed(RayStreamer(stream, n_workers=2).iterate(), n_items)


CONTENDERS = {
    "in process": in_process,
    "ZMQStreamer x1": zmq_streamer(1),
    "ZMQStreamer x2": zmq_streamer(2),
    "ZMQStreamer x2 unordered": zmq_streamer(2, ordered=False),
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


def workers_curve(workers=(1, 2), n_items=200, n_ffts=50, rounds=3):
    """{n_workers: median items/s} of ZMQStreamer on part 1's stream, and
    the in-process figure under key 0; interleaved rounds."""
    runs = {n: [] for n in (0,) + tuple(workers)}
    for round_ in range(rounds):
        order = list(runs) if round_ % 2 == 0 else list(runs)[::-1]
        for n in order:
            run = in_process if n == 0 else zmq_streamer(n)
            runs[n].append(run(make_stream(n_items, n_ffts), n_items)[1])
    return {n: statistics.median(rates) for n, rates in runs.items()}


# -- part 2: against PyTorch's DataLoader ------------------------------------

CASES = {
    # name: (generator, its argument, batch size, batches per run (full,
    # quick))
    "CPU-heavy 8 KB items": (heavy, 20, 16, (150, 25)),
    "16 MB batches": (large, 1 << 20, 16, (150, 25)),
}
N_FILES = 8


def pescador_pipeline(make, argument, batch, n_workers):
    """Files mixed at random (StochasticMux), batched in the workers."""
    mux = pescador.StochasticMux(
        [pescador.Streamer(make, f, None, argument) for f in range(N_FILES)],
        n_active=4, rate=16)
    return pescador.ZMQStreamer(
        pescador.Streamer(pescador.buffer_stream, mux, batch),
        n_workers=n_workers)


def torch_pipeline(make, argument, batch, n_workers):
    """The idiomatic IterableDataset: each worker takes its share of the
    files and mixes them at random; DataLoader batches."""
    import torch.utils.data

    class Files(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            files = list(range(N_FILES))
            if info is not None:
                files = files[info.id::info.num_workers]
            rng = random.Random()
            opened = [make(f, None, argument) for f in files]
            while True:
                yield next(rng.choice(opened))

    return torch.utils.data.DataLoader(Files(), batch_size=batch,
                                       num_workers=n_workers)


def against_torch(quick, n_workers=2, rounds=3):
    """Rows of part 2: pescador and torch batches/s, and their ratio."""
    rows = []
    for name, (make, argument, batch, sizes) in CASES.items():
        n_batches = sizes[1] if quick else sizes[0]
        rates = {"pescador": [], "torch": []}
        for round_ in range(rounds):
            order = list(rates) if round_ % 2 == 0 else list(rates)[::-1]
            for who in order:
                build = pescador_pipeline if who == "pescador" \
                    else torch_pipeline
                rates[who].append(timed(build(make, argument, batch,
                                              n_workers), n_batches)[1])
        rows.append([
            name, "{:.1f}".format(statistics.median(rates["pescador"])),
            "{:.1f}".format(statistics.median(rates["torch"])),
            spread([p / t for p, t in zip(rates["pescador"],
                                          rates["torch"])])])
    return rows


def spread(values, fmt="{:.2f}"):
    """'median [min-max]' of values."""
    return (fmt + " [" + fmt + "-" + fmt + "]").format(
        statistics.median(values), min(values), max(values))


def part_one(args, rounds, n_items):
    names = [name for name in CONTENDERS
             if args.ray or not name.startswith("Ray")]
    started = cold = None
    if args.ray:
        started, cold = start_ray()
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
            spread([run[name][1] / run["ZMQStreamer x1"][1]
                    for run in runs]),
            "{:.1f}".format(min(run[name][0] for run in runs) * 1e3)])
    print_table(
        "{} items of {} FFTs each, {} interleaved rounds: median [min-max] "
        "of the per-round ratios ({} CPUs)".format(
            n_items, args.ffts, rounds, os.cpu_count()),
        ["contender", "items/s", "/ " + BASELINE, "/ ZMQStreamer x1",
         "first item ms (best)"], rows)
    if args.ray:
        print("\nRay: local cluster started in {:.1f} s; first RayStreamer "
              "item, cold (worker processes starting): {:.0f} ms".format(
                  started, cold * 1e3))
    return runs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer and shorter rounds (CI, docs)")
    parser.add_argument("--ffts", type=int, default=100,
                        help="FFTs per item of part 1 (its CPU cost)")
    parser.add_argument("--no-ray", dest="ray", action="store_false",
                        help="skip RayStreamer")
    parser.add_argument("--no-torch", dest="torch", action="store_false",
                        help="skip the comparison with PyTorch")
    parser.add_argument("--part", choices=["1", "2", "all"], default="all",
                        help="run part 1 (the pool), 2 (against PyTorch) "
                        "or both")
    args = parser.parse_args(argv)
    rounds, n_items = (3, 150) if args.quick else (5, 400)
    try:
        import ray  # noqa: F401
    except ImportError:
        args.ray = False
    runs = part_one(args, rounds, n_items) if args.part != "2" else None
    if args.part == "1":
        return runs
    try:
        import torch  # noqa: F401
    except ImportError:
        args.torch = False
        print("\ntorch is not installed: no comparison with its DataLoader")
    if args.torch:
        print_table(
            "Against PyTorch's DataLoader, 2 workers each, files mixed at "
            "random and batched by 16, {} interleaved rounds: batches/s "
            "(medians), and median [min-max] of the per-round "
            "ratios".format(rounds),
            ["case", "pescador", "torch", "pescador / torch"],
            against_torch(args.quick, rounds=rounds))
    return runs


if __name__ == "__main__":
    main()
