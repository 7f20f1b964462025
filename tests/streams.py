"""Generator functions shared by the tests.

They live in a module (not inside test functions) so that Streamers built
from them pickle, and so that worker processes started with ``spawn`` can
import them.
"""

import numpy as np


def count(n, start=0):
    """Yield start, start + 1, ..., start + n - 1."""
    yield from range(start, start + n)


def constant(value):
    """Yield ``value`` forever."""
    while True:
        yield value


def empty():
    """Yield nothing."""
    return
    yield  # pragma: no cover


def labelled(label, n=None):
    """Yield ``{'label': label, 'i': i}`` for i = 0, 1, ... (n items, or
    forever when n is None)."""
    i = 0
    while n is None or i < n:
        yield {"label": label, "i": i}
        i += 1


def arrays(n, shape=(3,), dtype="float32", seed=0):
    """Yield n dicts ``{'X': array of shape, 'Y': int64 scalar array}``."""
    rng = np.random.RandomState(seed)
    for i in range(n):
        yield {"X": rng.standard_normal(shape).astype(dtype),
               "Y": np.array(i, dtype=np.int64)}


def fail_after(n, exc_type=ValueError, message="boom"):
    """Yield 0 .. n-1, then raise ``exc_type(message)``."""
    yield from range(n)
    raise exc_type(message)
