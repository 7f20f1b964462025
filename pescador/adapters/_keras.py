"""Keras 3: a ``keras.utils.PyDataset`` over a `Streamer` or mux."""

import os
import threading
from typing import Any, Optional

import keras
import numpy as np

from ..core import Streamer
from ..exceptions import PescadorError
from ..maps import _Keys, keras_tuples

__all__ = ["KerasPyDataset"]


class KerasPyDataset(keras.utils.PyDataset):
    """A ``keras.utils.PyDataset`` that serves the batches of a stream.

    For the simplest recipe no adapter is needed: ``model.fit`` takes the
    generator made by `keras_tuples` (see Examples). This adapter adds
    Keras' own ``workers``, ``use_multiprocessing`` and ``max_queue_size``
    options, and a fixed epoch length.

    Parameters
    ----------
    streamer : Streamer, mux or iterable
        Yields batches Keras accepts: ``(x, y)`` or ``(x, y, sample_weight)``
        tuples, or dicts of arrays when ``inputs``/``outputs`` are given.
        Any other iterable is wrapped as ``Streamer(streamer)``. The stream
        is cycled: it restarts whenever it ends.
    num_batches : None or int > 0
        Batches per epoch; ``None``: an infinite dataset (then give
        ``steps_per_epoch`` to ``fit``).
    inputs, outputs : None, key or list of keys
        If either is given, each dict item becomes an ``(x, y)`` tuple by
        `keras_tuples`.
    workers, use_multiprocessing, max_queue_size
        As for ``keras.utils.PyDataset``.

    Raises
    ------
    PescadorError
        If ``num_batches`` or ``inputs``/``outputs`` is invalid, or (when
        a batch is requested) the stream yields nothing at all.

    Notes
    -----
    Batch ``index`` is simply the next batch of the stream: the index is
    ignored, so ``shuffle=True`` in ``fit`` has no effect. With worker
    threads (``workers > 1``, the default ``use_multiprocessing=False``)
    all threads share one stream under a lock, so no batch is produced
    twice. With ``use_multiprocessing=True`` every worker process runs its
    own copy of the stream and seeds numpy's global random generator afresh
    (from the operating system), like a plain `Streamer` in `TorchDataset`:
    fine for random samplers, but a deterministic stream is repeated in
    each process.

    Examples
    --------
    >>> import os
    >>> os.environ.setdefault('KERAS_BACKEND', 'torch')
    '...'
    >>> import numpy as np
    >>> import keras
    >>> import pescador
    >>> import pescador.adapters
    >>> def batches(w):
    ...     rng = np.random.default_rng(0)
    ...     while True:
    ...         x = rng.normal(size=(8, 2)).astype('float32')
    ...         yield {'x': x, 'y': x @ np.float32(w)}
    >>> stream = pescador.Streamer(batches, [[1.0], [-1.0]])
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer='sgd', loss='mse')

    The talk's recipe, modern spelling:

    >>> history = model.fit(pescador.keras_tuples(stream, 'x', 'y'),
    ...                     steps_per_epoch=5, epochs=2, verbose=0,
    ...                     shuffle=False)

    With the adapter:

    >>> data = pescador.adapters.KerasPyDataset(
    ...     stream, num_batches=5, inputs='x', outputs='y', workers=2)
    >>> len(data), data[0][0].shape
    (5, (8, 2))
    >>> history = model.fit(data, epochs=2, verbose=0)
    >>> len(history.history['loss'])
    2
    """

    def __init__(self, streamer: Any, num_batches: Optional[int] = None,
                 inputs: _Keys = None, outputs: _Keys = None,
                 workers: int = 1, use_multiprocessing: bool = False,
                 max_queue_size: int = 10) -> None:
        super().__init__(workers=workers,
                         use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        if not isinstance(streamer, Streamer):
            streamer = Streamer(streamer)
        if inputs is not None or outputs is not None:
            keras_tuples([], inputs, outputs)  # check the keys now
            streamer = Streamer(keras_tuples, streamer, inputs, outputs)
        if num_batches is not None and not (
                isinstance(num_batches, int) and num_batches > 0
                and not isinstance(num_batches, bool)):
            raise PescadorError(
                "KerasPyDataset: invalid num_batches={!r}: expected None or "
                "a positive int".format(num_batches))
        self.streamer = streamer
        self._num_batches = num_batches
        self._start(os.getpid())

    def _start(self, pid):
        self._pid = pid
        self._lock = threading.Lock()
        self._batches = None

    @property
    def num_batches(self) -> Optional[int]:
        """Batches per epoch, or ``None`` for an infinite dataset."""
        return self._num_batches

    def __len__(self) -> int:
        if self._num_batches is None:
            raise TypeError("KerasPyDataset(num_batches=None) is infinite "
                            "and has no len()")
        return self._num_batches

    def __getitem__(self, index: int) -> Any:
        if self._pid != os.getpid():
            # A fresh worker process (a fork copies the parent's RNG state
            # and possibly a held lock): start over with a new seed.
            self._start(os.getpid())
            np.random.seed(np.random.SeedSequence().generate_state(1))
        with self._lock:
            if self._batches is None:
                self._batches = self.streamer.cycle()
            for batch in self._batches:
                return batch
        raise PescadorError(
            "KerasPyDataset: the stream {!r} yields no batches".format(
                self.streamer))

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(_lock=None, _batches=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._start(self._pid)
