"""Adapters that feed a pescador stream to PyTorch, Keras 3 and tf.data.

- `TorchDataset`: a ``torch.utils.data.IterableDataset`` over any
  `Streamer` or mux; ``DataLoader(num_workers=k)`` splits a mux among the
  workers instead of running it k times.
- `KerasPyDataset`: a ``keras.utils.PyDataset``, so that Keras' own
  ``workers`` options work (``keras_tuples`` output also goes straight into
  ``model.fit(..., steps_per_epoch=N)``).
- `tf_dataset`: a ``tf.data.Dataset`` whose ``output_signature`` is
  inferred from the first item (`infer_signature`) or given.
- `RayStreamer`: the shares of a stream run as tasks on a Ray cluster
  and merge in the consumer, as in ``ZMQStreamer(n_workers=k)``.
- `shard`: an alias of `pescador.shard`, the framework-free split behind
  `TorchDataset`.

``import pescador`` and ``import pescador.adapters`` never import a
framework: each adapter imports its framework when first looked up, and
raises an `ImportError` naming the extra to install
(``pip install ".[torch]"``, ``".[keras]"``, ``".[tensorflow]"``,
``".[ray]"`` in pescador's source folder; ``pip install pescador[torch]``
would fetch a different package, upstream pescador, from the index) if it
is missing.

Examples
--------
>>> import pescador
>>> import pescador.adapters
>>> mux = pescador.ChainMux([pescador.Streamer(range(i, i + 2))
...                          for i in (0, 10, 20)])
>>> list(pescador.adapters.shard(mux, 0, 2))
[0, 1, 20, 21]
>>> list(pescador.adapters.shard(mux, 1, 2))
[10, 11]
"""

import importlib
from types import ModuleType
from typing import Any, List

from ..split import shard

# The adapters stay out of __all__ so that a star import never imports a
# framework (or fails without one).
__all__ = ["require", "shard"]

# name -> (private module, framework module, extra, framework's name)
_LAZY = {
    "TorchDataset": ("_torch", "torch", "torch", "PyTorch"),
    "KerasPyDataset": ("_keras", "keras", "keras", "Keras 3"),
    "tf_dataset": ("_tf", "tensorflow", "tensorflow", "TensorFlow"),
    "infer_signature": ("_tf", "tensorflow", "tensorflow", "TensorFlow"),
    "RayStreamer": ("_ray", "ray", "ray", "Ray"),
}


def require(module: str, extra: str, framework: str,
            name: str) -> ModuleType:
    """Import ``module``, or raise an `ImportError` naming the extra.

    Parameters
    ----------
    module : str
        The framework's module, e.g. ``'torch'``.
    extra : str
        The pescador extra that installs it, e.g. ``'torch'``.
    framework : str
        The framework's name for the message, e.g. ``'PyTorch'``.
    name : str
        The adapter that needs it, e.g. ``'TorchDataset'``.

    Returns
    -------
    module

    Raises
    ------
    ImportError
        If ``module`` cannot be imported; the message says
        ``pip install ".[<extra>]"`` (the extra of this package, installed
        from its source folder, as the README does).

    Examples
    --------
    >>> from pescador.adapters import require
    >>> require('json', 'json', 'JSON', 'example').__name__
    'json'
    >>> require('no_such_framework', 'nsf', 'NSF', 'NSFDataset')
    Traceback (most recent call last):
    ...
    ImportError: pescador.adapters.NSFDataset needs NSF, which is not \
installed (No module named 'no_such_framework'): pip install ".[nsf]" \
in pescador's source folder
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            "pescador.adapters.{} needs {}, which is not installed ({}): "
            "pip install \".[{}]\" in pescador's source folder".format(
                name, framework, error, extra),
            name=module) from error


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(
            "module {!r} has no attribute {!r}".format(__name__, name))
    private, module, extra, framework = _LAZY[name]
    require(module, extra, framework, name)
    return getattr(importlib.import_module("." + private, __name__), name)


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_LAZY))
