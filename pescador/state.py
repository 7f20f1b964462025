"""Checkpoint and resume: the position of a running iteration as a small
dict of JSON types, and what turns it back into a running iteration.

`get_state` reads the position of any iteration that `Streamer.iterate`,
`Streamer.cycle` or ``Streamer.__call__`` returned; passing that dict back as
``state=`` to the same method of an equal stream (same code, same
arguments, e.g. in a new process) continues from there. The docs' page
"Checkpoint and resume" says what is exact and what it costs.

How it works: each iteration is registered, by a weak reference, with a
function that reads its position from the live objects when asked; nothing
is recorded per item. Counts of items are read off ``itertools.repeat``
objects (their remaining length), which the loops consume anyway.
"""

import base64
import weakref
from itertools import islice
from operator import length_hint
from typing import Any, Callable, Dict, Iterator, Optional

import numpy as np

from .exceptions import PescadorError

__all__ = ["get_state"]

#: The version of the state format; a state of another version is refused.
VERSION = 1
# Counters start here: far more items than any stream yields.
BIG = 2 ** 62

# iteration -> a function returning its state. Weak keys: an iteration
# that is dropped leaves no trace. The functions must not refer to their
# iteration (it would then never be dropped).
_ITERATIONS: "weakref.WeakKeyDictionary[Any, Callable[[], Dict[str, Any]]]"
_ITERATIONS = weakref.WeakKeyDictionary()


def register(iteration: Any, read_state: Callable[[], Dict[str, Any]]) -> Any:
    """Make ``get_state(iteration)`` return ``read_state()``; return
    ``iteration``."""
    _ITERATIONS[iteration] = read_state
    return iteration


def is_registered(iteration: Any) -> bool:
    """True if `get_state` knows ``iteration``."""
    try:
        return iteration in _ITERATIONS
    except TypeError:       # not weakly referenceable: not ours
        return False


def get_state(iterator: Iterator[Any]) -> Dict[str, Any]:
    """The position of a running iteration, as a small dict of JSON types.

    Parameters
    ----------
    iterator : iterator
        What `Streamer.iterate`, `Streamer.cycle` or ``Streamer.__call__``
        returned, of any `Streamer`, mux, map wrapped in a Streamer
        (``Streamer(buffer_stream, mux, 16)``) or `ZMQStreamer`, at any
        point: before its first item, between two items, or after its last.

    Returns
    -------
    state : dict
        Only dicts, lists, strings, ints, floats, bools and None: it
        survives ``json.loads(json.dumps(state))`` and pickling. Pass it as
        ``state=`` to the same method of an equal stream (same code, same
        arguments) to continue from this position, e.g. in a new process.

    Raises
    ------
    PescadorError
        If ``iterator`` is not an iteration of a pescador stream, or if the
        stream cannot be resumed (e.g. a map over a one-shot generator
        object).

    See Also
    --------
    Streamer.iterate : takes ``state=``.

    Examples
    --------
    >>> import json
    >>> import pescador
    >>> mux = pescador.ShuffledMux(['abc', 'xyz'], random_state=0)
    >>> items = mux.iterate(max_iter=8)
    >>> first = [next(items) for _ in range(3)]
    >>> state = json.loads(json.dumps(pescador.get_state(items)))
    >>> rest = list(items)
    >>> again = pescador.ShuffledMux(['abc', 'xyz'], random_state=0)
    >>> list(again.iterate(max_iter=8, state=state)) == rest
    True
    """
    try:
        read_state = _ITERATIONS.get(iterator)
    except TypeError:
        read_state = None
    if read_state is None:
        raise PescadorError(
            "get_state expects an iteration of a pescador stream (what "
            "Streamer.iterate(), cycle() or __call__ returned); got {!r} "
            "({})".format(iterator, type(iterator).__name__))
    return read_state()


def counted(counter: "Any") -> int:
    """How many items a ``repeat(x, BIG)`` counter has given."""
    return BIG - length_hint(counter)


def skip(iterator: Iterator[Any], n: int, what: str) -> Iterator[Any]:
    """Advance ``iterator`` by ``n`` items and return it; `PescadorError`
    if it ends first (the state does not fit the stream)."""
    if n:
        missing = object()
        if next(islice(iterator, n - 1, n), missing) is missing:
            raise PescadorError(
                "The state does not fit the stream: {} ended before item {}"
                " where the state was taken".format(what, n))
    return iterator


def mismatch(what: str, expected: Any, got: Any) -> PescadorError:
    """The error for a state that does not fit the stream."""
    return PescadorError(
        "The state does not fit the stream: it was taken from {} {!r}, but"
        " this stream has {!r}".format(what, got, expected))


def check_fits(*checks: "tuple") -> None:
    """Raise `mismatch` for the first ``(what, expected, got)`` of
    ``checks`` whose values differ."""
    for what, expected, got in checks:
        if expected != got:
            raise mismatch(what, expected, got)


def check_keys(state: Any, keys: "tuple", what: str) -> Dict[str, Any]:
    """``state`` if it is a dict with ``keys``; else `PescadorError`."""
    if not isinstance(state, dict) or any(k not in state for k in keys):
        raise PescadorError(
            "Invalid state for {}: expected a dict with keys {}; got {!r}. "
            "Pass what pescador.get_state returned".format(
                what, ", ".join(keys), state))
    return state


# -- random generators --------------------------------------------------------

def encode_rng(rng: Any) -> Optional[Dict[str, Any]]:
    """The state of a numpy generator in JSON types (arrays as base64), or
    None for the ``numpy.random`` module (the global state is not ours)."""
    if isinstance(rng, np.random.Generator):
        return _encode(rng.bit_generator.state)
    if isinstance(rng, np.random.RandomState):
        return _encode(rng.get_state(legacy=False))
    return None


def encode_rng_state(state: Dict[str, Any]) -> Dict[str, Any]:
    """A bit generator's ``state`` dict in JSON types."""
    return _encode(state)


def decode_rng(rng: Any, state: Optional[Dict[str, Any]], what: str) -> None:
    """Set ``rng`` to an `encode_rng` state (nothing for None)."""
    if state is None or encode_rng(rng) is None:
        return
    try:
        if isinstance(rng, np.random.Generator):
            rng.bit_generator.state = _decode(state)
        else:
            rng.set_state(_decode(state))
    except (TypeError, ValueError, KeyError) as error:
        raise PescadorError(
            "The state does not fit the stream: the random state of {} "
            "cannot be restored ({})".format(what, error)) from None


def _encode(value):
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"ndarray": base64.b64encode(value.tobytes()).decode("ascii"),
                "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value):
    if isinstance(value, dict):
        if set(value) == {"ndarray", "dtype"}:
            return np.frombuffer(base64.b64decode(value["ndarray"]),
                                 dtype=value["dtype"]).copy()
        return {k: _decode(v) for k, v in value.items()}
    return value
