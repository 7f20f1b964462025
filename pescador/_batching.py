"""The stacking of `pescador.buffer_stream`: a list of dict items into one
dict of arrays, with a clear `DataError` for malformed items."""

from collections import Counter
from collections.abc import Mapping
from operator import itemgetter
from typing import Callable, Optional

import numpy as np

from .exceptions import DataError

# np.array stacks a list of same-shape arrays in C, much faster than
# np.stack for small arrays; before numpy 1.24 it silently built an object
# array from ragged input, so older versions use np.stack.
_stack_new_axis: Callable[..., np.ndarray]
if np.lib.NumpyVersion(np.__version__) >= "1.24.0":
    _stack_new_axis = np.array
else:  # pragma: no cover
    _stack_new_axis = np.stack



def _not_a_dict(item, index, func):
    return DataError(
        "{}: item {} is a {} ({!r:.60}), expected a dict of arrays".format(
            func, index, type(item).__name__, item))


def _first_keys(item):
    if not isinstance(item, Mapping):
        raise _not_a_dict(item, 0, "buffer_stream")
    return tuple(item)


def _stack_batch(batch, keys, start, axis):
    """Stack the items of ``batch`` (numbered from ``start``) key by key."""
    # Cheap whole-batch checks first; the item-by-item search for the
    # culprit only runs once one of them fails.
    if not set(map(type, batch)) <= {dict}:
        for index, item in enumerate(batch, start):
            if not isinstance(item, Mapping):
                raise _not_a_dict(item, index, "buffer_stream")
    if set(map(len, batch)) != {len(keys)}:
        _raise_other_keys(batch, keys, start)
    out = {}
    for key in keys:
        try:
            values = list(map(itemgetter(key), batch))
        except KeyError:
            _raise_other_keys(batch, keys, start)
        out[key] = _join(values, key, start, axis)
    return out


def _raise_other_keys(batch, keys, start):
    for index, item in enumerate(batch, start):
        if set(item) != set(keys):
            raise DataError(
                "buffer_stream: item {} has keys {}, but the first item had "
                "keys {}".format(index, list(item), list(keys)))


def _join(values, key, start, axis):
    """Stack (axis None) or concatenate ``values``, or raise `DataError`."""
    try:
        if axis is None:
            joined = _stack_new_axis(values)
            if joined.shape[1:] == _shape(values[0]):
                return joined
        else:
            return np.concatenate(values, axis=axis)
    except (ValueError, TypeError) as exc:
        reason: Optional[Exception] = exc
    else:
        reason = None
    shapes = Counter(map(_shape, values))
    raise DataError(
        "buffer_stream: cannot {} key {!r}{} of items {} to {}: {}{}".format(
            "stack" if axis is None else "concatenate", key,
            "" if axis is None else " along axis={}".format(axis),
            start, start + len(values) - 1,
            "shapes differ: " if len(shapes) > 1 else "shapes ",
            ", ".join("{} x {}".format(shape, count)
                      for shape, count in shapes.items()))
        + ("" if reason is None or len(shapes) > 1
           else " ({})".format(reason))) from reason


def _shape(value):
    try:
        return np.shape(value)
    except ValueError:  # a ragged nested sequence
        return "ragged"
