"""tf.data: a ``tf.data.Dataset`` built from a `Streamer` or mux."""

from typing import Any, Optional

import numpy as np
import tensorflow as tf

from ..core import Streamer, check_max_iter
from ..exceptions import DataError, PescadorError

__all__ = ["tf_dataset", "infer_signature"]


def tf_dataset(streamer: Any, output_signature: Any = None,
               max_iter: Optional[int] = None,
               cycle: bool = False) -> "tf.data.Dataset":
    """A ``tf.data.Dataset`` over the items of a stream.

    Built with ``tf.data.Dataset.from_generator``: each iteration of the
    dataset iterates the stream afresh.

    Parameters
    ----------
    streamer : Streamer, mux or iterable
        Any other iterable is wrapped as ``Streamer(streamer)``. Items are
        dicts, tuples or lists of arrays (nested as deep as you like) or
        single arrays; lists are passed on as tuples.
    output_signature : None or nested ``tf.TensorSpec``
        ``None``: inferred from the first item of the stream (which costs
        one extra activation of the stream) by `infer_signature`.
    max_iter : None or int >= 0
        Items per iteration of the dataset; ``None``: until the stream ends.
    cycle : bool
        Restart the stream whenever it ends (``Streamer.cycle``).

    Returns
    -------
    tf.data.Dataset

    Raises
    ------
    PescadorError
        If ``max_iter`` is invalid, or the signature must be inferred and
        the stream is empty or its first item has no tensor form.

    Examples
    --------
    >>> import numpy as np
    >>> import pescador
    >>> import pescador.adapters
    >>> def batches(n):
    ...     for i in range(n):
    ...         yield {'x': np.full((2, 3), i, np.float32),
    ...                'y': np.arange(2) + i}
    >>> stream = pescador.Streamer(batches, 3)
    >>> data = pescador.adapters.tf_dataset(stream)
    >>> data.element_spec['x']
    TensorSpec(shape=(None, 3), dtype=tf.float32, name=None)
    >>> [batch['y'].numpy().tolist() for batch in data]
    [[0, 1], [1, 2], [2, 3]]
    >>> len(list(pescador.adapters.tf_dataset(stream, cycle=True,
    ...                                       max_iter=7)))
    7
    """
    if not isinstance(streamer, Streamer):
        streamer = Streamer(streamer)
    max_iter = check_max_iter(max_iter)
    if output_signature is None:
        first = list(streamer.iterate(max_iter=1))
        if not first:
            raise PescadorError(
                "tf_dataset: cannot infer output_signature, {!r} yields no "
                "items; give output_signature".format(streamer))
        output_signature = infer_signature(first[0])

    def generate():
        items = streamer.cycle(max_iter) if cycle else \
            streamer.iterate(max_iter)
        for item in items:
            yield _lists_to_tuples(item)

    return tf.data.Dataset.from_generator(generate,
                                          output_signature=output_signature)


def infer_signature(item: Any) -> Any:
    """The ``tf.TensorSpec`` structure matching one item of a stream.

    Each array gets its dtype and its shape with the first dimension left
    as ``None``, so that batches of any length (such as the short last
    batch of ``buffer_stream(..., partial=True)``) match. Numbers and 0-d
    arrays get shape ``()``. Dicts keep their keys; tuples and lists become
    tuples.

    Parameters
    ----------
    item : dict, tuple, list, array or number

    Returns
    -------
    tf.TensorSpec, or a dict or tuple of them

    Raises
    ------
    PescadorError
        If a value has no tensor form (such as ``None``, as the ``y`` of
        ``keras_tuples`` without outputs): give the signature yourself.
    DataError
        If an array holds Python objects.

    Examples
    --------
    >>> import numpy as np
    >>> from pescador.adapters import infer_signature
    >>> infer_signature({'x': np.zeros((16, 5), np.float32), 'n': 3})
    {'x': TensorSpec(shape=(None, 5), dtype=tf.float32, name=None), \
'n': TensorSpec(shape=(), dtype=tf.int64, name=None)}
    >>> infer_signature((np.zeros(4, np.uint8), [np.array(['a', 'b'])]))
    (TensorSpec(shape=(None,), dtype=tf.uint8, name=None), \
(TensorSpec(shape=(None,), dtype=tf.string, name=None),))
    """
    return _signature(item, "item")


def _signature(value, where):
    if isinstance(value, dict):
        return {key: _signature(part, "{}[{!r}]".format(where, key))
                for key, part in value.items()}
    if isinstance(value, (tuple, list)):
        return tuple(_signature(part, "{}[{}]".format(where, i))
                     for i, part in enumerate(value))
    if value is None or not isinstance(
            value, (np.ndarray, np.generic, int, float, complex, bool, str,
                    bytes)):
        raise PescadorError(
            "tf_dataset: cannot infer a TensorSpec for {} = {!r} ({}); "
            "expected an array or a number, or give output_signature".format(
                where, value, type(value).__name__))
    array = np.asarray(value)
    if array.dtype.kind in "US":
        dtype = tf.string
    elif array.dtype.kind == "O":
        raise DataError(
            "tf_dataset: {} is an array of Python objects; expected "
            "numbers or strings".format(where))
    else:
        dtype = tf.as_dtype(array.dtype)
    return tf.TensorSpec(shape=(None,) * (array.ndim > 0) + array.shape[1:],
                         dtype=dtype)


def _lists_to_tuples(item):
    if isinstance(item, dict):
        return {key: _lists_to_tuples(value) for key, value in item.items()}
    if isinstance(item, (tuple, list)):
        return tuple(_lists_to_tuples(value) for value in item)
    return item
