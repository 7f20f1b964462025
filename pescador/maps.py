"""Maps: generators that reshape a stream of items.

Each map takes any iterable of items (a `Streamer`, a mux, a list, a
generator) and returns a generator. Arguments are checked when the map is
called; the items are checked as they arrive. A generator can be consumed
only once: to reuse a map, wrap it in a `Streamer`, e.g.
``Streamer(buffer_stream, stream, 16)``.

Checkpoint and resume: `pescador.get_state` reads the position of a map's
generator, and of a Streamer of a map (``Streamer(buffer_stream, mux,
16).iterate()``), whose ``iterate(state=...)`` continues from it. A map
over a `Streamer` or a mux continues its input from the input's own
state; over a list (or another re-iterable) it skips the items taken; over
a one-shot iterator such as a generator object it cannot be resumed, and
`get_state` raises `PescadorError`.
"""

from collections.abc import Mapping
from itertools import islice
from operator import itemgetter
from typing import (Any, Dict, Iterable, Iterator, Optional,
                    Sequence, Tuple, Union)


from ._batching import _first_keys, _not_a_dict, _stack_batch
from ._cache import start_cache
from ._maps_state import (check_map_state, describe_keys, start_map,
                          wrappable)
from .exceptions import PescadorError
from .util import (RandomStateLike, _check_positive_int, _is_int, _is_number,
                   get_rng)

#: The ``inputs``/``outputs`` of `keras_tuples`: a key, or keys.
_Keys = Union[None, str, Sequence[str]]

__all__ = ["buffer_stream", "tuples", "keras_tuples", "cache"]

def _missing_key(item, key, index, func):
    return KeyError(
        "{}: key {!r} is not in item {} (its keys: {})".format(
            func, key, index, list(item)))


# -- buffer_stream --------------------------------------------------------

def _buffer_args(buffer_size, partial, axis):
    buffer_size = _check_positive_int(buffer_size, "buffer_size",
                                      "buffer_stream")
    if axis is not None and not _is_int(axis):
        raise PescadorError(
            "buffer_stream: invalid axis={!r} ({}): expected None or an "
            "int".format(axis, type(axis).__name__))
    return {"buffer_size": buffer_size, "partial": bool(partial),
            "axis": None if axis is None else int(axis)}


def _resume_buffer_stream(state: Dict[str, Any], stream: Iterable[Any],
                          buffer_size: int, partial: bool = False,
                          axis: Optional[int] = None
                          ) -> Iterator[Dict[Any, Any]]:
    """`buffer_stream` continuing from ``state`` (what `get_state` gave)."""
    params = _buffer_args(buffer_size, partial, axis)
    state = check_map_state(state, "buffer_stream", params, ("input",))
    return start_map("buffer_stream", stream, params, state,
                  lambda items, progress: _buffer_stream(
                      items, progress, **params))


@wrappable(_resume_buffer_stream)
def buffer_stream(stream: Iterable[Any], buffer_size: int,
                  partial: bool = False,
                  axis: Optional[int] = None) -> Iterator[Dict[Any, Any]]:
    """Group the items of a stream into batches.

    Every ``buffer_size`` items (dicts of arrays with the same keys) become
    one dict that maps each key to the items' arrays stacked together.

    Parameters
    ----------
    stream : iterable of dict
        The items, e.g. a `Streamer` or a mux. Values may be numpy arrays,
        numpy scalars or Python numbers (which become arrays).
    buffer_size : int > 0
        The number of items in a batch.
    partial : bool
        If True, the items left over at the end of the stream (fewer than
        ``buffer_size``) make one last, shorter batch; otherwise they are
        dropped.
    axis : None or int
        ``None``: stack the arrays along a new leading axis, so an item of
        shape ``s`` gives a batch of shape ``(buffer_size,) + s``.
        An int: concatenate them along this existing axis instead, e.g. to
        join batches into bigger batches with ``axis=0``.

    Returns
    -------
    generator of dict
        Each batch maps the keys of the first item (in its order) to arrays;
        dtypes are kept (mixed dtypes promote as in numpy). Resumable (see
        `pescador.get_state`) when ``stream`` is a `Streamer`, a mux or a
        list: between batches the buffer is empty, so the state is the
        input's position, and resuming costs what resuming the input costs.

    Raises
    ------
    PescadorError
        At call time, if ``buffer_size`` is not a positive int, ``axis`` is
        neither None nor an int, or ``stream`` is not iterable.
    DataError
        During iteration, if an item is not a dict, has other keys than the
        first item, or its arrays cannot be stacked (or concatenated) with
        the others; the message names the key and the shapes seen.

    See Also
    --------
    pescador.util.batch_length : the length of a batch.

    Examples
    --------
    >>> import numpy as np
    >>> import pescador
    >>> items = [{'X': np.full(2, i, dtype=np.float32), 'Y': i}
    ...          for i in range(5)]
    >>> for batch in pescador.buffer_stream(items, 2):
    ...     print(batch['X'].tolist(), batch['X'].dtype, batch['Y'])
    [[0.0, 0.0], [1.0, 1.0]] float32 [0 1]
    [[2.0, 2.0], [3.0, 3.0]] float32 [2 3]
    >>> tail = pescador.buffer_stream(items, 2, partial=True)
    >>> [b['Y'].tolist() for b in tail]
    [[0, 1], [2, 3], [4]]

    Batches of batches, joined along their first axis:

    >>> small = pescador.buffer_stream(items, 2, partial=True)
    >>> big = pescador.buffer_stream(small, 2, partial=True, axis=0)
    >>> [b['X'].shape for b in big]
    [(4, 2), (1, 2)]

    To reuse a buffered stream, wrap it in a Streamer:

    >>> batches = pescador.Streamer(pescador.buffer_stream, items, 4)
    >>> [b['Y'].tolist() for b in batches], [b['Y'].tolist() for b in batches]
    ([[0, 1, 2, 3]], [[0, 1, 2, 3]])

    Checkpoint and resume (the state is JSON, for a fresh process):

    >>> pairs = pescador.Streamer(pescador.buffer_stream, items, 2, True)
    >>> running = pairs.iterate()
    >>> next(running)['Y'].tolist()
    [0, 1]
    >>> state = pescador.get_state(running)
    >>> [b['Y'].tolist() for b in pairs.iterate(state=state)]
    [[2, 3], [4]]
    >>> ragged = [{'X': np.zeros(2)}, {'X': np.zeros(3)}]
    >>> next(pescador.buffer_stream(ragged, 2))
    Traceback (most recent call last):
    ...
    pescador.exceptions.DataError: buffer_stream: cannot stack key 'X' of
    items 0 to 1: shapes differ: (2,) x 1, (3,) x 1
    """
    params = _buffer_args(buffer_size, partial, axis)
    return start_map("buffer_stream", stream, params, None,
                  lambda items, progress: _buffer_stream(
                      items, progress, **params))


def _buffer_stream(items, progress, buffer_size, partial, axis):
    # At each yield the buffer is empty: the map's position is its input's.
    keys = None
    start = 0
    while True:
        batch = list(islice(items, buffer_size))
        if len(batch) < buffer_size and not (partial and batch):
            progress.done = True
            return
        if keys is None:
            keys = _first_keys(batch[0])
        yield _stack_batch(batch, keys, start, axis)
        start += len(batch)


# -- tuples and keras_tuples ---------------------------------------------

def _tuples_params(keys):
    if not keys:
        raise PescadorError("tuples: give at least one key to extract")
    return {"keys": describe_keys(list(keys))}


def _resume_tuples(state: Dict[str, Any], stream: Iterable[Any],
                   *keys: Any) -> Iterator[Tuple[Any, ...]]:
    """`tuples` continuing from ``state`` (what `get_state` gave)."""
    params = _tuples_params(keys)
    state = check_map_state(state, "tuples", params, ("input",))
    return start_map("tuples", stream, params, state,
                  _mapper("tuples", _select(list(keys))))


def _mapper(name, func):
    return lambda items, progress: _map_items(items, progress, name, func)


@wrappable(_resume_tuples)
def tuples(stream: Iterable[Any], *keys: Any) -> Iterator[Tuple[Any, ...]]:
    """Turn each dict item into a tuple of its values for ``keys``.

    Parameters
    ----------
    stream : iterable of dict
        The items, e.g. a `Streamer` or a mux.
    *keys
        The keys to extract, in order (at least one).

    Returns
    -------
    generator of tuple
        ``tuple(item[key] for key in keys)`` for each item. Resumable (see
        `pescador.get_state`) when ``stream`` is a `Streamer`, a mux or a
        list: one tuple per item, so the state is the input's position.

    Raises
    ------
    PescadorError
        At call time, if no key is given or ``stream`` is not iterable.
    DataError
        During iteration, if an item is not a dict.
    KeyError
        During iteration, if an item lacks one of ``keys`` (the message
        names it).

    Examples
    --------
    >>> import pescador
    >>> items = [{'X': 1, 'Y': 'a'}, {'X': 2, 'Y': 'b'}]
    >>> list(pescador.tuples(items, 'X', 'Y'))
    [(1, 'a'), (2, 'b')]
    >>> list(pescador.tuples(items, 'Y'))
    [('a',), ('b',)]
    >>> running = pescador.Streamer(pescador.tuples, items, 'X').iterate()
    >>> next(running)
    (1,)
    >>> state = pescador.get_state(running)
    >>> list(pescador.Streamer(pescador.tuples, items, 'X').iterate(
    ...     state=state))
    [(2,)]
    >>> list(pescador.tuples(items, 'Z'))
    Traceback (most recent call last):
    ...
    KeyError: "tuples: key 'Z' is not in item 0 (its keys: ['X', 'Y'])"
    """
    params = _tuples_params(keys)
    return start_map("tuples", stream, params, None,
                  _mapper("tuples", _select(list(keys))))


def _select(keys):
    """A function from an item to its values for ``keys``: the bare value
    for a single key, a tuple of values for a list of keys, and always
    None for None."""
    if keys is None:
        return lambda item: None
    if isinstance(keys, (list, tuple)):
        keys = list(keys)
        return lambda item: tuple([item[key] for key in keys])
    return itemgetter(keys)


def _map_items(items, progress, name, func):
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise _not_a_dict(item, index, name)
        try:
            value = func(item)
        except KeyError as exc:
            raise _missing_key(item, exc.args[0], index, name) from None
        yield value
    progress.done = True


def _keras_args(inputs, outputs):
    if all(side is None or (isinstance(side, (list, tuple)) and not side)
           for side in (inputs, outputs)):
        raise PescadorError(
            "keras_tuples: give inputs, outputs or both (a key or a list of "
            "keys); got inputs={!r}, outputs={!r}".format(inputs, outputs))
    for name, side in (("inputs", inputs), ("outputs", outputs)):
        if not isinstance(side, (list, tuple)):
            try:
                hash(side)
            except TypeError:
                raise PescadorError(
                    "keras_tuples: invalid {}={!r} ({}): expected None, a "
                    "key or a list of keys".format(
                        name, side, type(side).__name__)) from None
    get_x, get_y = _select(inputs), _select(outputs)
    return ({"inputs": describe_keys(inputs),
             "outputs": describe_keys(outputs)},
            _mapper("keras_tuples", lambda item: (get_x(item), get_y(item))))


def _resume_keras_tuples(state: Dict[str, Any], stream: Iterable[Any],
                         inputs: _Keys = None, outputs: _Keys = None
                         ) -> Iterator[Tuple[Any, Any]]:
    """`keras_tuples` continuing from ``state`` (what `get_state` gave)."""
    params, run = _keras_args(inputs, outputs)
    state = check_map_state(state, "keras_tuples", params, ("input",))
    return start_map("keras_tuples", stream, params, state, run)


@wrappable(_resume_keras_tuples)
def keras_tuples(stream: Iterable[Any], inputs: _Keys = None,
                 outputs: _Keys = None) -> Iterator[Tuple[Any, Any]]:
    """Turn each dict item into an ``(inputs, outputs)`` pair, as Keras
    expects.

    Parameters
    ----------
    stream : iterable of dict
        The items, e.g. a `Streamer` or a mux.
    inputs, outputs : None, str (a key), or list of keys
        What goes into each side of the pair: a single key gives its bare
        array, a list (or tuple) of keys gives a tuple of arrays, even for
        one key, and ``None`` gives ``None``. At least one side must name a
        key.

    Returns
    -------
    generator of tuple
        ``(x, y)`` for each item. Resumable (see `pescador.get_state`) when
        ``stream`` is a `Streamer`, a mux or a list, as `tuples` is.

    Raises
    ------
    PescadorError
        At call time, if neither ``inputs`` nor ``outputs`` names a key, or
        ``stream`` is not iterable.
    DataError
        During iteration, if an item is not a dict.
    KeyError
        During iteration, if an item lacks one of the keys (the message
        names it).

    Examples
    --------
    >>> import pescador
    >>> items = [{'X': 1, 'Y': 10, 'W': 0.5}]
    >>> list(pescador.keras_tuples(items, inputs='X', outputs='Y'))
    [(1, 10)]
    >>> list(pescador.keras_tuples(items, inputs=['X', 'W'], outputs=['Y']))
    [((1, 0.5), (10,))]
    >>> list(pescador.keras_tuples(items, inputs='X'))
    [(1, None)]

    Notes
    -----
    Pescador 2.0 gave a *list* of arrays for a list of keys; this gives a
    tuple, which Keras reads the same way (a sequence of inputs, in the
    order of the model's inputs) on every backend, while Keras 3's
    TensorFlow backend rejects lists in a generator's items ("output_signature
    must contain objects that are subclass of tf.TypeSpec but found <class
    'list'>"). A one-element tuple feeds a single-input model.
    """
    params, run = _keras_args(inputs, outputs)
    return start_map("keras_tuples", stream, params, None, run)


# -- cache ----------------------------------------------------------------

def _cache_args(n_cache, prob, random_state):
    n_cache = _check_positive_int(n_cache, "n_cache", "cache")
    if not (_is_number(prob) and 0 < prob <= 1):
        raise PescadorError(
            "cache: invalid prob={!r} ({}): expected a number in (0, "
            "1]".format(prob, type(prob).__name__))
    rng = get_rng(random_state)
    return ({"n_cache": n_cache, "prob": float(prob),
             "seeded": random_state is not None}, rng)


def _resume_cache(state: Dict[str, Any], stream: Iterable[Any],
                  n_cache: int, prob: float = 0.5,
                  random_state: RandomStateLike = None) -> Iterator[Any]:
    """`cache` continuing from ``state`` (what `get_state` gave)."""
    params, rng = _cache_args(n_cache, prob, random_state)
    state = check_map_state(state, "cache", params,
                            ("origin", "slots", "block"))
    return start_cache(stream, params, rng, state)


@wrappable(_resume_cache)
def cache(stream: Iterable[Any], n_cache: int, prob: float = 0.5,
          random_state: RandomStateLike = None) -> Iterator[Any]:
    """Reuse items from a small cache to stretch a slow stream.

    The first ``n_cache`` items pass through in order and fill the cache.
    Then each step picks a cache slot uniformly at random, replaces its
    item with a fresh one from ``stream`` with probability ``prob``, and
    yields the slot's item. So, after the cache is full, a share of about
    ``1 - prob`` of the items yielded are repeats.

    Parameters
    ----------
    stream : iterable
        The source of items (a `Streamer`, a mux, a list, a generator...).
    n_cache : int > 0
        The number of items kept in the cache.
    prob : float in (0, 1]
        The probability that a step draws a fresh item; ``prob=1`` yields
        the source unchanged.
    random_state : None, int, np.random.RandomState or np.random.Generator
        As in `pescador.util.get_rng`. With a seed, the same input gives the
        same output.

    Returns
    -------
    generator
        Ends when a fresh item is needed and ``stream`` has none left: every
        item of a finite ``stream`` is yielded at least once, and the first
        occurrences come in the source order. Resumable (see
        `pescador.get_state`) when ``stream`` is a `Streamer`, a mux or a
        list; see Notes for what that costs.

    Raises
    ------
    PescadorError
        At call time, if ``n_cache`` is not a positive int, ``prob`` is not a
        number in (0, 1], ``random_state`` is invalid, or ``stream`` is not
        iterable.

    Examples
    --------
    >>> import pescador
    >>> out = list(pescador.cache(range(10), 3, prob=0.5, random_state=0))
    >>> out[:3]
    [0, 1, 2]
    >>> sorted(set(out)) == list(range(10)) and len(out) > 10
    True
    >>> out == list(pescador.cache(range(10), 3, prob=0.5, random_state=0))
    True
    >>> list(pescador.cache(range(5), 2, prob=1))
    [0, 1, 2, 3, 4]

    Checkpoint and resume:

    >>> stream = pescador.Streamer(pescador.cache, range(10), 3, 0.5, 0)
    >>> running = stream.iterate()
    >>> head = [next(running) for _ in range(6)]
    >>> state = pescador.get_state(running)
    >>> head + list(stream.iterate(state=state)) == out
    True

    Notes
    -----
    Checkpoint and resume. The state holds the *positions* of the cached
    items in the input's iteration (not the items), an *origin* (the
    input's state at a position at or before all of them), and the random
    generator's state before its first block of 256 steps' draws, with the
    number of blocks and steps used. Resuming re-runs the input from the
    origin up to the checkpoint, keeping the cached items as they come by
    (and draws the blocks again, about 4 microseconds each).

    The origin is the start of the input's iteration (with the state of
    the epoch generators of the seeded muxes in it, so that the same epoch
    is drawn again) until the cache has pulled ``S = max(8192, 4 *
    n_cache)`` items; from then on, every ``S`` items pulled, the cache
    records the input's state as a candidate, which becomes the origin
    once every item cached before it has been replaced. So resuming costs
    every item the input produced before the checkpoint in this iteration
    while that is fewer than about ``2 * S``, and in a long iteration at
    most about ``2 * (S + A)``, where ``A`` is the age in items pulled of
    the oldest cached item (about ``n_cache * ln(n_cache)`` on average),
    plus what resuming the input from its state costs; never more than
    the whole iteration so far. Recording a
    candidate costs one `pescador.get_state` of the input per ``S`` items.

    Exact when the input is exact (deterministic generators, seeded
    muxes) and ``random_state`` is a seed or a generator. With
    ``random_state=None`` (numpy's global generator, which is not part of
    the state), the cache's contents and the input's position are
    restored exactly, but the draws after the checkpoint come from the
    global state of the new process, so the repeats differ.
    """
    params, rng = _cache_args(n_cache, prob, random_state)
    return start_cache(stream, params, rng, None)
