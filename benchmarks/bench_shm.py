"""Benchmark the shared-memory transport against raw pyzmq and np.copyto.

For one float32 array of 64 KB, 256 KB, 1 MB and 16 MB, measure the
throughput of a forked sender and a receiving process, over ipc at the
high-water mark ZMQStreamer uses, in the steady state (the last three
quarters of the items, once the pool has grown) and over whole runs (first
item to last), and the time to the first item, of:

- raw: raw pyzmq multipart, a 19-byte header frame + the array, sent and
  received zero-copy (the floor the issue names, as in bench_zmq.py);
- shm: the sender copies the array into shared memory
  (`pescador._background.shm.Writer.put`, one copy, a pool of reused
  segments) and sends a one-frame header carrying the 8-byte descriptor,
  as the integrated wire will; the receiver maps it
  (`Reader.take`, no copy) and holds each array until the next arrives,
  as a consumer of ZMQStreamer items does;
- shm copy: the same, the receiver taking a private copy (``copy=True``);
- shm fresh: the same with no pool (``slots=0``): a fresh segment per
  array, for the cost of page allocation;
- put+take: `Writer.put` then `Reader.take` and drop in one process;
- ``np.copyto`` of the same array into a preallocated array, for scale.

Contenders run one after another in rounds (raw and shm back to back, the
order alternating between rounds); the table gives the median and range of
the per-round ratios, since a 2-core machine shared with others drifts.

Run: ``python benchmarks/bench_shm.py [--quick]``.
"""

import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
import zmq

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from bench_zmq import HEADERS, _raw_sender  # noqa: E402
from harness import best_time, print_table  # noqa: E402

from pescador._background import shm  # noqa: E402

SIZES = {"64 KB": 64 << 10, "256 KB": 256 << 10, "1 MB": 1 << 20,
         "16 MB": 16 << 20}
ITEMS = {"64 KB": 20000, "256 KB": 6000, "1 MB": 2000, "16 MB": 150}
HWM = 8
SLOTS = 2 * HWM + 4
HEADER = HEADERS["short"]  # ZMQStreamer's named header


def _sender(address, nbytes, n, how, prefix):
    if how == "raw":  # the same floor as bench_zmq's
        _raw_sender(address, nbytes, n, HWM, HEADER)
    context = zmq.Context()
    socket = context.socket(zmq.PUSH)
    socket.sndhwm = HWM
    socket.connect(address)
    array = np.ones(nbytes // 4, dtype=np.float32)
    writer = shm.Writer(prefix, slots=0 if how == "shm fresh" else SLOTS)
    for _ in range(n):
        socket.send(HEADER + writer.put(array), copy=False)
    # Exiting now would lose what the receiver has not read yet: wait to
    # be terminated, as ZMQStreamer's worker does.
    time.sleep(3600)


def run(how, nbytes, n):
    """(seconds to the first item, items/s after it, items/s over the last
    three quarters) of ``how``."""
    start = time.perf_counter()
    context = zmq.Context()
    socket = context.socket(zmq.PULL)
    socket.rcvhwm = HWM
    directory = tempfile.mkdtemp()
    address = "ipc://" + os.path.join(directory, "bench")
    socket.bind(address)
    prefix = shm.run_prefix()
    reader = shm.Reader(prefix)
    dtype, shape = np.dtype(np.float32), (nbytes // 4,)
    copy = how == "shm copy"
    process = multiprocessing.Process(target=_sender, args=(
        address, nbytes, n, how, prefix))
    process.start()
    try:
        skip, quarter = len(HEADER), n // 4
        for i in range(n):
            if i == 1:
                first = time.perf_counter()
            elif i == quarter:
                warm = time.perf_counter()
            if how == "raw":
                held = socket.recv_multipart(copy=False)
            else:
                held = reader.take(socket.recv()[skip:], dtype, shape, "C",
                                   copy)
        end = time.perf_counter()
    finally:
        process.terminate()
        process.join()
        del held
        reader.close()
        socket.close(linger=0)
        context.term()
        shutil.rmtree(directory)
    return (first - start, (n - 1) / (end - first),
            (n - quarter) / (end - warm))


def put_take_rate(nbytes):
    """put + take + drop in one process, arrays per second."""
    prefix = shm.run_prefix()
    writer, reader = shm.Writer(prefix, slots=SLOTS), shm.Reader(prefix)
    array = np.ones(nbytes // 4, dtype=np.float32)

    def once():
        reader.take(writer.put(array), array.dtype, array.shape, "C")

    number = max(1, (64 << 20) // nbytes)
    try:
        return 1 / best_time(once, 5, number)
    finally:
        writer.close()
        reader.close()


def copyto_rate(nbytes):
    source = np.ones(nbytes // 4, dtype=np.float32)
    target = np.empty_like(source)
    number = max(1, (64 << 20) // nbytes)
    return 1 / best_time(lambda: np.copyto(target, source), 5, number)


def spread(values, fmt="{:.2f}"):
    return (fmt + " [" + fmt + "-" + fmt + "]").format(
        statistics.median(values), min(values), max(values))


def main(quick=False):
    rounds = 3 if quick else 5
    names = ["raw", "shm", "shm copy", "shm fresh"]
    rows, firsts, whole = [], [], []
    for label, nbytes in SIZES.items():
        n = ITEMS[label] // (4 if quick else 1)
        gb = nbytes / 1e9
        results = []
        for i in range(rounds):
            order = names if i % 2 == 0 else names[1::-1] + names[2:]
            results.append({name: run(name, nbytes, n) for name in order})
        copy = copyto_rate(nbytes)
        put_take = put_take_rate(nbytes)
        firsts.append([label] + ["{:.1f}".format(min(
            r[name][0] for r in results) * 1e3) for name in names])
        whole.append([label] + [spread([r[name][1] / r["raw"][1]
                                        for r in results])
                                for name in names[1:]])
        runs = [{name: r[name][2] for name in names} for r in results]

        def ratios(name, runs=runs):
            return [r[name] / r["raw"] for r in runs]

        def rate(name, runs=runs):
            return statistics.median(r[name] for r in runs)

        rows.append([
            label,
            "{:.2f}".format(rate("raw") * gb),
            "{:.2f}".format(rate("shm") * gb),
            "{:.2f}".format(rate("shm copy") * gb),
            "{:.2f}".format(rate("shm fresh") * gb),
            "{:.2f}".format(put_take * gb),
            "{:.1f}".format(copy * gb),
            spread(ratios("shm")), spread(ratios("shm copy")),
            spread(ratios("shm fresh")),
            "{:.2f}".format(rate("shm") / copy)])
    print_table(
        "Steady state (the last three quarters of each run): GB/s (medians "
        "over {} interleaved rounds) and ratios, median [min-max] of the "
        "per-round ratios; ipc, hwm={}, pool of {} segments".format(
            rounds, HWM, SLOTS),
        ["array", "raw", "shm", "shm copy", "shm fresh", "put+take",
         "copyto", "shm/raw", "shm copy/raw", "fresh/raw", "shm/copyto"],
        rows)
    print_table("Whole runs (first item to last, pool growth included): "
                "ratios to raw", ["array"] + [n + "/raw" for n in names[1:]],
                whole)
    print_table("Time to the first item (ms, best round; process start "
                "included)", ["array"] + names, firsts)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
