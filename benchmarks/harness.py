"""Shared timing helpers for the benchmarks.

Every figure is reported as a ratio against a baseline measured in the same
run, because these machines are noisy: absolute seconds mean little, the
ratio to a plain generator (or raw pyzmq, or np.copyto) measured a moment
before means a lot.
"""

import time
from itertools import islice


def best_time(func, repeat=5, number=1):
    """The best wall time of ``number`` calls of ``func``, over ``repeat``
    rounds, in seconds per call."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            func()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def consume(iterable, n=None):
    """Exhaust ``iterable`` (or take ``n`` items of it) as fast as Python
    can, returning how many items were taken."""
    count = 0
    for _ in islice(iterable, n):
        count += 1
    return count


def items_per_second(make_iterable, n_items, repeat=5):
    """Best-of-``repeat`` throughput of ``n_items`` items from a fresh
    ``make_iterable()``."""
    seconds = best_time(lambda: consume(make_iterable(), n_items), repeat)
    return n_items / seconds


def print_table(title, header, rows):
    """Print rows as a fixed-width table (the format pasted in issue
    notes)."""
    widths = [max(len(str(cell)) for cell in column)
              for column in zip(header, *rows)]
    line = "  ".join("{:<%d}" % w for w in widths)
    print("\n" + title)
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))
