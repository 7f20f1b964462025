"""Split a stream into disjoint shares, for parallel workers and ranks."""

import copy
import inspect
import warnings
from collections.abc import Sequence

import numpy as np

from ..core import Streamer
from ..exceptions import PescadorError
from ..util import _is_int

__all__ = ["shard"]


def shard(streamer, index, count, epoch=0):
    """Share ``index`` of ``count`` disjoint shares of a stream.

    The outermost mux of the stream is split by its streamers: share
    ``index`` runs the mux over the streamers ``i`` with
    ``i % count == index`` (and their weights). The outermost mux is
    ``streamer`` itself if it is a mux, else the first mux found inside a
    plain `Streamer`: its source (``Streamer(mux)``) or one of its
    arguments (``Streamer(buffer_stream, mux, 16)``), searched depth first.
    A stream with no mux cannot be split: every share is the whole stream.

    A mux seeded with an int or a ``RandomState`` gets a different seed in
    each share, derived from its seed, ``index`` and ``epoch``; a mux on
    numpy's global generator (``random_state=None``) keeps it.

    Parameters
    ----------
    streamer : Streamer or mux
    index : int, 0 <= index < count
    count : int > 0
    epoch : int
        Mixed into the derived seeds, so that each epoch differs.

    Returns
    -------
    Streamer
        A new Streamer (``streamer`` itself when it has no mux, or when
        ``count == 1`` and ``epoch == 0``). A share with no streamers
        yields nothing.

    Raises
    ------
    PescadorError
        If ``index``, ``count`` or ``epoch`` is invalid.

    Examples
    --------
    >>> import pescador
    >>> from pescador.adapters import shard
    >>> mux = pescador.ChainMux([pescador.Streamer('ab'),
    ...                          pescador.Streamer('cd'),
    ...                          pescador.Streamer('ef')])
    >>> [''.join(shard(mux, i, 2)) for i in range(2)]
    ['abef', 'cd']
    >>> batches = pescador.Streamer(pescador.tuples, mux, 'x')
    >>> shard(batches, 1, 2).args[0].streamers == [mux.streamers[1]]
    True
    >>> plain = pescador.Streamer('xyz')
    >>> shard(plain, 1, 2) is plain
    True
    """
    if not (_is_int(count) and count > 0 and _is_int(index)
            and 0 <= index < count):
        raise PescadorError(
            "shard: invalid index={!r}, count={!r}: expected ints with "
            "0 <= index < count".format(index, count))
    check_epoch(epoch, "shard")
    if count == 1 and epoch == 0:
        return streamer
    return _rewrite(streamer, lambda mux: _split(mux, index, count, epoch))


def check_epoch(epoch, name):
    """Return ``epoch`` as an int, or raise `PescadorError` for ``name``."""
    if not (_is_int(epoch) and epoch >= 0):
        raise PescadorError(
            "{}: invalid epoch={!r}: expected an int >= 0".format(name, epoch))
    return int(epoch)


def mux_size(streamer):
    """The number of streamers of the outermost mux, or None without one.

    Examples
    --------
    >>> import pescador
    >>> from pescador.adapters._shard import mux_size
    >>> mux = pescador.ChainMux([pescador.Streamer('ab')] * 3)
    >>> mux_size(pescador.Streamer(pescador.tuples, mux, 'x'))
    3
    >>> mux_size(pescador.Streamer('ab')) is None
    True
    """
    sizes = []

    def record(mux):
        sizes.append(len(_streamers(mux)))
        return mux

    _rewrite(streamer, record)
    return sizes[0] if sizes else None


def split_count(total, index, count):
    """Share ``index`` of ``total`` items split as evenly as possible.

    Examples
    --------
    >>> from pescador.adapters._shard import split_count
    >>> [split_count(10, i, 3) for i in range(3)]
    [4, 3, 3]
    >>> split_count(None, 0, 3) is None
    True
    """
    if total is None:
        return None
    return total // count + (index < total % count)


def _is_mux(streamer):
    from ..mux import BaseMux
    return isinstance(streamer, BaseMux)


def _streamers(mux):
    """The mux's streamers as a list, or None if they cannot be split."""
    streamers = mux.streamers
    return list(streamers) if isinstance(streamers, Sequence) else None


def _rewrite(streamer, change):
    """Apply ``change`` to the outermost mux; return the rewritten stream.

    Only the Streamers on the path to that mux are copied; everything else
    is shared with ``streamer``.
    """
    if _is_mux(streamer):
        if _streamers(streamer) is None:
            return streamer
        return change(streamer)
    if not isinstance(streamer, Streamer):
        return streamer
    children = [("streamer", None, streamer.streamer)]
    children += [("args", i, arg) for i, arg in enumerate(streamer.args)]
    children += [("kwargs", key, value)
                 for key, value in streamer.kwargs.items()]
    for where, key, child in children:
        if not isinstance(child, Streamer):
            continue
        new = _rewrite(child, change)
        if new is child:
            continue
        clone = copy.copy(streamer)
        if where == "streamer":
            clone.streamer = new
        elif where == "args":
            clone.args = streamer.args[:key] + (new,) + streamer.args[key + 1:]
        else:
            clone.kwargs = dict(streamer.kwargs, **{key: new})
        return clone
    return streamer


def _split(mux, index, count, epoch):
    """A new mux of the same class over share ``index`` of the streamers."""
    params = inspect.signature(type(mux)).parameters
    kwargs = {name: getattr(mux, name) for name in params
              if name != "streamers" and hasattr(mux, name)}
    streamers = _streamers(mux)[index::count]
    if kwargs.get("weights") is not None:
        weights = np.asarray(kwargs["weights"], dtype=float)[index::count]
        if not weights.any():
            streamers, weights = [], None
        kwargs["weights"] = weights
    kwargs["random_state"] = _derive_seed(mux.random_state, index, epoch)
    if not streamers:
        return Streamer([])
    with warnings.catch_warnings():
        # The user was warned when building a deprecated `Mux`; a share of
        # it is our doing.
        warnings.simplefilter("ignore", DeprecationWarning)
        return type(mux)(streamers, **kwargs)


def _derive_seed(random_state, index, epoch):
    """A seed for share ``index`` drawn from a mux's seed, or None."""
    if random_state is None:
        return None
    # Draw from a copy: the mux's own generator must not move.
    if isinstance(random_state, np.random.Generator):
        random_state = copy.deepcopy(random_state).integers(2**32)
    elif isinstance(random_state, np.random.RandomState):
        random_state = copy.deepcopy(random_state).randint(2**32)
    entropy = [int(random_state), int(index), int(epoch)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])
