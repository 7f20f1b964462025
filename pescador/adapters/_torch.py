"""PyTorch: an ``IterableDataset`` over a `Streamer` or mux."""


import weakref
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..core import Streamer, check_max_iter
from ..exceptions import DataError, PescadorError
from ..state import check_fits, check_keys, get_state, mismatch
from ..util import _is_int
from ..split import check_epoch, mux_size, shard, split_count

__all__ = ["TorchDataset"]


class TorchDataset(IterableDataset):
    """A ``torch.utils.data.IterableDataset`` over a `Streamer` or mux.

    Items are passed on with every numpy array turned into a tensor that
    shares its memory (``torch.from_numpy``), inside dicts, tuples and lists
    too; other values (Python numbers, strings, string arrays) pass as they
    are.

    Parameters
    ----------
    streamer : Streamer, mux or iterable
        The stream; any other iterable is wrapped as ``Streamer(streamer)``.
        Use ``Streamer(buffer_stream, mux, n)`` to batch in pescador and
        ``DataLoader(dataset, batch_size=None)`` to take the batches as
        they are; otherwise the ``DataLoader`` batches single items.
    max_iter : None or int >= 0
        Items per iteration (epoch) on each rank, shared as evenly as
        possible among the ``DataLoader`` workers; ``None``: until the
        stream ends. It is also the dataset's ``len()``, which is
        undefined without it.
    cycle : bool
        Restart the stream whenever it ends (``Streamer.cycle``); give
        ``max_iter`` too, or the epoch never ends.
    rank, world_size : None or int
        This process' share of a multi-process (distributed) run: rank
        ``rank`` of ``world_size`` runs only its own share of the stream.
        ``None`` (both): from ``torch.distributed`` when it is initialized,
        else a single process.

    Raises
    ------
    PescadorError
        If ``max_iter``, ``rank`` or ``world_size`` is invalid, or the
        outermost mux has fewer streamers than ``world_size`` (a rank would
        get nothing), or, with ``world_size > 1`` (here) or several
        ``DataLoader`` workers (when a worker starts), the stream cannot be
        split (see `pescador.shard`).
    DataError
        During iteration, if an array has a dtype torch cannot hold.

    Notes
    -----
    **Workers.** With ``DataLoader(num_workers=k)`` every worker iterates
    its own copy of the dataset. The outermost mux of the stream (the
    streamer itself, or the one a plain `Streamer` wraps, such as
    ``Streamer(buffer_stream, mux, n)``) is split with `shard`: worker ``w``
    of rank ``r`` runs the mux over streamers ``i`` with
    ``i % (k * world_size) == r * k + w``, so no item is produced twice,
    and every seeded mux in the share (nested ones too) gets a seed
    derived from its own, the share and the epoch.

    A stream that cannot be split (one without a mux, or whose outermost
    mux takes its streamers from a generator) raises `PescadorError` with
    several workers or ranks, rather than running whole in each of them
    (each would yield the same items): the error reaches the caller of the
    ``DataLoader``'s iteration. Wrap such a source as a mux (for instance a
    `ChainMux` of one streamer per file) to split it, or use
    ``num_workers=0``.

    ``DataLoader`` copies the dataset into fresh workers at every epoch
    (unless ``persistent_workers=True``), so a mux seeded with an int
    replays the same order every epoch there. Call ``set_epoch(epoch)``
    before each epoch, as with ``DistributedSampler``, to vary it
    reproducibly.

    **Checkpoints.** `state_dict` and `load_state_dict` make the dataset
    ``Stateful`` for torchdata's ``StatefulDataLoader``, which then resumes
    mid-epoch through pescador's own state (`pescador.get_state`) instead
    of replaying every batch taken before the checkpoint: with
    ``num_workers=k``, each worker's share is saved and resumed on its own,
    at the batches the consumer has received. The state (JSON types only)
    holds the epoch, the share and the position of the stream in it.

    Examples
    --------
    >>> import numpy as np
    >>> import pescador
    >>> import pescador.adapters
    >>> from torch.utils.data import DataLoader
    >>> streams = [pescador.Streamer([{'x': np.full(2, i, np.float32)}])
    ...            for i in range(4)]
    >>> dataset = pescador.adapters.TorchDataset(pescador.ChainMux(streams))
    >>> [batch['x'].tolist() for batch in DataLoader(dataset, batch_size=2)]
    [[[0.0, 0.0], [1.0, 1.0]], [[2.0, 2.0], [3.0, 3.0]]]
    >>> next(iter(dataset))['x'].dtype
    torch.float32
    """

    def __init__(self, streamer: Any, max_iter: Optional[int] = None,
                 cycle: bool = False, rank: Optional[int] = None,
                 world_size: Optional[int] = None) -> None:
        super().__init__()
        if not isinstance(streamer, Streamer):
            streamer = Streamer(streamer)
        self.streamer = streamer
        self.max_iter = check_max_iter(max_iter)
        self.cycle = bool(cycle)
        self.rank, self.world_size = _check_rank(rank, world_size)
        self.epoch = 0
        self._pending: Optional[Dict[str, Any]] = None
        self._run: Optional[_Run] = None
        if self.world_size > 1:
            shard(streamer, self.rank, self.world_size)  # splittable?
        size = mux_size(streamer)
        if size is not None and size < self.world_size:
            raise PescadorError(
                "TorchDataset: the mux has {} streamers, fewer than "
                "world_size={}: some ranks would get none".format(
                    size, self.world_size))

    def __len__(self) -> int:
        """``max_iter``: the items of an epoch on this rank, all workers
        together (so ``DataLoader``, tqdm and Lightning show totals).

        Exact with ``cycle=True``; without it, an upper bound that a
        shorter stream does not reach. Without ``max_iter`` the length is
        unknown (a stream is a generator: it is only known once run, and
        many are infinite), and ``len()`` raises ``TypeError``, as for any
        object without a length.

        Examples
        --------
        >>> import pescador
        >>> import pescador.adapters
        >>> len(pescador.adapters.TorchDataset(range(10), max_iter=4))
        4
        """
        if self.max_iter is None:
            raise TypeError(
                "TorchDataset(max_iter=None) has no len(): the length of a "
                "stream is unknown until it ends; give max_iter")
        return self.max_iter

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds the next iteration's shares.

        Parameters
        ----------
        epoch : int >= 0

        Raises
        ------
        PescadorError
            If ``epoch`` is not an int >= 0.

        Examples
        --------
        >>> import pescador
        >>> import pescador.adapters
        >>> dataset = pescador.adapters.TorchDataset(range(3))
        >>> dataset.set_epoch(1)
        >>> dataset.epoch
        1
        """
        self.epoch = check_epoch(epoch, "TorchDataset.set_epoch")

    def state_dict(self) -> Dict[str, Any]:
        """The position of the dataset's latest iteration, for a checkpoint.

        ``StatefulDataLoader`` calls it (in each worker, with workers) and
        keeps the state of the batches its consumer has received.

        Returns
        -------
        state : dict
            JSON types only: ``"epoch"``, ``"share"`` (``[index, count]`` of
            the share of the stream the iteration ran, or ``None`` before
            any iteration), ``"max_iter"``, ``"cycle"`` and ``"stream"``,
            what `pescador.get_state` returned for the iteration (``None``
            before any). A state loaded with `load_state_dict` and not yet
            iterated is returned as it is.

        Examples
        --------
        >>> import pescador
        >>> import pescador.adapters
        >>> dataset = pescador.adapters.TorchDataset(range(5))
        >>> items = iter(dataset)
        >>> [next(items) for _ in range(2)]
        [0, 1]
        >>> state = dataset.state_dict()
        >>> state["stream"]["taken"], state["epoch"], state["share"]
        (2, 0, [0, 1])
        """
        if self._pending is not None:
            return self._pending
        if self._run is None:
            return self._state(self.epoch, None, None)
        return self._state(self._run.epoch, self._run.share,
                           self._run.state())

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Make the next iteration continue from ``state_dict``.

        ``StatefulDataLoader`` calls it (in each worker, with workers) when
        its first iteration after ``load_state_dict`` starts. The resumed
        iteration runs at the state's epoch, whatever `set_epoch` said; the
        iterations after it start afresh at the dataset's ``epoch``, so
        call `set_epoch` before each epoch as in an uninterrupted run.

        Parameters
        ----------
        state_dict : dict
            What `state_dict` returned, on an equal dataset (same stream,
            ``max_iter``, ``cycle``, ranks and number of workers), maybe in
            another process.

        Raises
        ------
        PescadorError
            If ``state_dict`` is not such a state, or was taken with
            another ``max_iter`` or ``cycle``; when iterated, if it was
            taken with another share of the stream (number of workers or
            ranks) or does not fit the stream (see `pescador.get_state`):
            by the first ``next()`` of the iteration.

        Examples
        --------
        >>> import json
        >>> import pescador
        >>> import pescador.adapters
        >>> mux = pescador.ShuffledMux(['abc', 'xyz'], random_state=0)
        >>> dataset = pescador.adapters.TorchDataset(mux, max_iter=6)
        >>> items = iter(dataset)
        >>> first = [next(items) for _ in range(2)]
        >>> saved = json.dumps(dataset.state_dict())
        >>> again = pescador.adapters.TorchDataset(
        ...     pescador.ShuffledMux(['abc', 'xyz'], random_state=0),
        ...     max_iter=6)
        >>> again.load_state_dict(json.loads(saved))
        >>> list(again) == list(items)
        True
        """
        state = check_keys(state_dict, _STATE_KEYS, "TorchDataset")
        check_fits(
            ("a TorchDataset state of version", _VERSION,
             state["torch_dataset"]),
            ("a TorchDataset with max_iter", self.max_iter,
             state["max_iter"]),
            ("a TorchDataset with cycle", self.cycle, state["cycle"]))
        share = state["share"]
        if share is not None and not (
                isinstance(share, list) and len(share) == 2
                and all(_is_int(x) for x in share)):
            raise PescadorError(
                "Invalid TorchDataset state: share={!r}; expected None or "
                "[index, count]".format(share))
        check_epoch(state["epoch"], "TorchDataset state")
        self._pending = dict(state)

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        state["_run"] = None    # a live iteration stays in its process
        return state

    def __iter__(self) -> Iterator[Any]:
        # The state loaded is taken now, when the DataLoader makes its
        # iterator (which it may drop unused); an error (a stream that
        # cannot be split, a state that does not fit) is raised by the
        # first next(), where the DataLoader passes a worker's error on.
        state, self._pending = self._pending, None
        try:
            items, self._run = self._start(state)
        except PescadorError as error:
            self._run = None
            return _raise(error)
        return _tensors(items, self._run)

    def _start(self, state: Optional[Dict[str, Any]]) -> Tuple[Any, "_Run"]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        share = [self.rank * workers + worker, self.world_size * workers]
        epoch, resume = self.epoch, None
        if state is not None:
            if state["share"] is not None and state["share"] != share:
                raise mismatch("the share [index, count] of its workers "
                               "and ranks", share, state["share"])
            epoch, resume = state["epoch"], state["stream"]
        stream = shard(self.streamer, share[0], share[1], epoch=epoch)
        max_iter = split_count(self.max_iter, worker, workers)
        run = stream.cycle if self.cycle else stream.iterate
        items = run(max_iter, state=resume)
        return items, _Run(epoch, share, items, resume)

    def _state(self, epoch: int, share: Optional[List[int]],
               stream: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        return {"torch_dataset": _VERSION, "epoch": epoch, "share": share,
                "max_iter": self.max_iter, "cycle": self.cycle,
                "stream": stream}


#: The version of `TorchDataset.state_dict`'s format.
_VERSION = 1
_STATE_KEYS = ("torch_dataset", "epoch", "share", "max_iter", "cycle",
               "stream")


class _Run:
    """One iteration of a `TorchDataset`: its epoch, its share and where
    its stream is. It refers to the stream's iteration weakly, so that an
    abandoned iteration closes (and its files with it) when dropped, and
    keeps the last position read for `TorchDataset.state_dict` after that
    (at first, the position it started from: ``None`` for a fresh start).
    The position is read only when asked for: a stream that cannot resume
    (a map over a one-shot generator) iterates as well, and its
    `state_dict` raises `PescadorError` saying why."""

    __slots__ = ("epoch", "share", "_items", "_last", "_error")

    def __init__(self, epoch: int, share: List[int], items: Iterator[Any],
                 start: Optional[Dict[str, Any]]) -> None:
        self.epoch, self.share = epoch, share
        self._items = weakref.ref(items)
        self._last = start
        self._error: Optional[PescadorError] = None

    def state(self) -> Optional[Dict[str, Any]]:
        items = self._items()
        if items is not None:
            self._last = get_state(items)
        elif self._error is not None:
            raise self._error
        return self._last

    def keep_last(self) -> None:
        """Read the position now, while the iteration still exists."""
        try:
            self.state()
        except PescadorError as error:
            self._error = error     # a stream that cannot resume


def _raise(error: Exception) -> Iterator[Any]:
    raise error
    yield   # a generator: it raises when first asked for an item


def _tensors(items: Iterator[Any], run: _Run) -> Iterator[Any]:
    try:
        for item in items:
            yield to_tensors(item)
    finally:
        run.keep_last()


def _check_rank(rank, world_size):
    if rank is None and world_size is None:
        distributed = torch.distributed
        if distributed.is_available() and distributed.is_initialized():
            return distributed.get_rank(), distributed.get_world_size()
        return 0, 1
    if not (_is_int(world_size) and world_size >= 1
            and _is_int(rank) and 0 <= rank < world_size):
        raise PescadorError(
            "TorchDataset: invalid rank={!r}, world_size={!r}: expected "
            "ints with 0 <= rank < world_size (or both None)".format(
                rank, world_size))
    return int(rank), int(world_size)


def to_tensors(item: Any, where: str = "item") -> Any:
    """Turn every numpy array in ``item`` into a tensor sharing its memory.

    Read-only arrays and arrays with negative strides are copied, since a
    tensor can be neither. Dicts, tuples and lists are converted inside;
    string arrays and other values are returned as they are.

    Examples
    --------
    >>> import numpy as np
    >>> from pescador.adapters._torch import to_tensors
    >>> x = np.arange(3)
    >>> out = to_tensors({'x': x, 'name': 'a'})
    >>> out['x'], out['name']
    (tensor([0, 1, 2]), 'a')
    >>> out["x"][0] = 7; int(x[0])
    7
    """
    if isinstance(item, np.ndarray):
        return _array_to_tensor(item, where)
    if isinstance(item, np.generic):
        return _array_to_tensor(np.asarray(item), where)
    if isinstance(item, dict):
        return {key: to_tensors(value, "{}[{!r}]".format(where, key))
                for key, value in item.items()}
    if isinstance(item, (tuple, list)):
        return type(item)(to_tensors(value, "{}[{}]".format(where, i))
                          for i, value in enumerate(item))
    return item


def _array_to_tensor(array, where):
    if array.dtype.kind in "US":
        return array
    if not array.flags.writeable or any(step < 0 for step in array.strides):
        array = array.copy()
    try:
        return torch.from_numpy(array)
    except TypeError as error:
        raise DataError(
            "TorchDataset: {} is an array of dtype {}, which torch cannot "
            "hold ({})".format(where, array.dtype, error)) from None
