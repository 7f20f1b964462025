"""Large arrays through shared memory: the worker copies each array once,
at ``yield`` time, into a segment of ``/dev/shm``; only an 8-byte
descriptor travels over the socket; the consumer maps the segment and
hands out a view of it.

Design (why, not what):

- Named POSIX segments (files in ``/dev/shm``) whose names start with a
  per-run prefix (the consumer's pid and 16 random bytes, so that names
  cannot be guessed or collide), created ``O_EXCL`` with mode 0600. The
  consumer opens, maps and *unlinks* a segment the first time it receives
  it, so from then on its memory lives exactly as long as the mappings:
  the kernel frees it when the last one goes, even if a process is killed.
  Only segments created but not yet received are named; every exit path
  sweeps them by prefix: the consumer after its workers have exited
  (normal end, early stop, a worker killed), a worker on its way out
  (including when its watchdog finds the consumer dead). Only the loss of
  both processes at once leaves names behind.
- Not ``memfd`` + ``/proc/<pid>/fd``: the worker would have to keep every
  descriptor open until the consumer confirms it has opened it, which is a
  second protocol, and ``/proc`` access depends on ptrace policy.
- Not ``multiprocessing.shared_memory``: its resource tracker (a process
  of its own) unlinks a segment when the process that created it exits,
  i.e. under the consumer's feet when a worker ends, warns about "leaked"
  segments the other side legitimately owns, and under spawn each side
  registers the segment again. It also keeps a file descriptor per
  segment, like ``mmap.mmap`` (which dups the descriptor before 3.13): a
  user holding a few thousand arrays would run out of descriptors. So we
  map with ``mmap(2)`` through ctypes and close the descriptor at once.
- Reuse: a fresh segment costs a page allocation (zero-filled) per 4 KB on
  the worker side and a page free on the consumer side; measured here that
  alone caps a fresh segment at about 2 GB/s, below the socket path. So a
  worker keeps a pool of ``slots`` segments that both sides keep mapped: a
  segment's first 64 bytes hold a flag, set busy by the worker when it puts
  an array there and set free by the consumer when the user drops the
  array (the finalizer of the array's base). Steady state is then one
  ``memcpy`` in the worker and no copy, no syscall in the consumer. When
  every slot is busy (the user holds many arrays) the worker falls back to
  a one-shot segment, freed as soon as its array is dropped; so the pool
  stays bounded by ``slots`` times the largest array, and memory in
  flight by ``in_flight``. A pooled segment's memory goes once the writer
  has closed (the stream ended) and the last array viewing it is dropped.
- In flight is counted, not left to the socket's high-water mark: a
  descriptor message is a few dozen bytes, and the kernel's socket buffer
  holds thousands of them beyond what ZeroMQ counts. Each writer has a
  control segment whose counter the consumer increments per array taken;
  the writer waits (sleeping, calling a hook that may abort) while its
  arrays put but not taken reach ``in_flight``.
- Space is reserved with ``posix_fallocate`` before anything is written:
  writing through a mapping past the capacity of a tmpfs kills the process
  with SIGBUS, while a failed reservation is a clean ``OSError`` (ENOSPC),
  after which `Writer.put` returns None and the caller sends the array over
  the socket, with one warning per writer. A writer also never takes more
  than half of the free space (other programs on the machine use
  ``/dev/shm`` too). `available_bytes` is the seam tests use to simulate a
  small ``/dev/shm`` (``PESCADOR_SHM_BYTES``).
"""

import ctypes
import errno
import os
import struct
import sys
import time
import warnings
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..exceptions import DataError
from .mappings import (BUSY, FREE, HEADER, PAGE, Lease, Mapping, Order,
                       array_over, open_segment, read_array, write_array)

__all__ = ["Writer", "Reader", "ShmFallbackWarning", "available_bytes",
           "probe", "storage_order", "sweep", "run_prefix", "worker_prefix"]

SHM_DIR = "/dev/shm"
LIMIT_ENV = "PESCADOR_SHM_BYTES"
#: Arrays of at least this many bytes are worth sending through shared
#: memory. Measured (benchmarks/bench_shm.py and the wire's packed path,
#: one array per item, ipc, items/s in the steady state): at 4 KB shared
#: memory runs at 0.65x today's packed one-frame path (its fixed cost, about
#: 13 us an array, dominates); at 16 KB 1.3x, 32 KB 1.5-1.8x, 60 KB 1.9x
#: the packed path; at 64 KB 2.4x, 1 MB 3.4x, 16 MB 3.2x raw pyzmq
#: multipart (zero-copy).
THRESHOLD = 16 << 10
#: `probe` finds shared memory unusable below this many free bytes.
MIN_FREE = 16 << 20
DESCRIPTOR_SIZE = 8
_DESCRIPTOR = struct.Struct("<HHI")  # worker, slot (0: one-shot), generation
_CONTROL = "c"  # the suffix of a writer's control segment
_HOOK_SECONDS = 0.1  # how often a waiting writer calls its hook

class ShmFallbackWarning(RuntimeWarning):
    """Shared memory is missing, too small or full: arrays go over the
    socket instead (slower, same values).

    Examples
    --------
    >>> from pescador._background.shm import ShmFallbackWarning
    >>> issubclass(ShmFallbackWarning, RuntimeWarning)
    True
    """


def run_prefix() -> str:
    """A fresh prefix for the segment names of one run (one stream).

    Examples
    --------
    >>> from pescador._background.shm import run_prefix
    >>> a, b = run_prefix(), run_prefix()
    >>> a.startswith('pescador-') and a != b
    True
    """
    return "pescador-{}-{}".format(os.getpid(), os.urandom(16).hex())


def worker_prefix(prefix: str, worker: int) -> str:
    """The prefix of every segment name of ``worker`` in the run
    ``prefix`` (what the worker sweeps on its way out).

    Examples
    --------
    >>> from pescador._background.shm import worker_prefix
    >>> worker_prefix('pescador-1-ab', 2)
    'pescador-1-ab-0200'
    """
    return "{}-{}".format(prefix, _DESCRIPTOR.pack(worker, 0, 0)[:2].hex())


def available_bytes() -> int:
    """The bytes free in `SHM_DIR` (0 if it is missing), capped by the
    environment variable ``PESCADOR_SHM_BYTES`` (which simulates a small
    shared memory in tests).

    Examples
    --------
    >>> import os
    >>> from pescador._background.shm import available_bytes, LIMIT_ENV
    >>> os.environ[LIMIT_ENV] = '1000'
    >>> available_bytes() <= 1000
    True
    >>> del os.environ[LIMIT_ENV]
    """
    try:
        stat = os.statvfs(SHM_DIR)
        free = stat.f_bavail * stat.f_frsize
    except OSError:
        free = 0
    limit = os.environ.get(LIMIT_ENV, "")
    if limit.isdigit():
        free = min(free, int(limit))
    return free


def probe(min_bytes: int = MIN_FREE) -> Optional[str]:
    """Why shared memory cannot be used here, or None if it can.

    The consumer calls this once before starting its workers; on a reason,
    it warns once (`ShmFallbackWarning`) and sends every array over the
    socket.

    Examples
    --------
    >>> from pescador._background.shm import probe
    >>> probe(1 << 80)
    'shared memory /dev/shm has ... bytes free, fewer than ...'
    """
    if not sys.platform.startswith("linux"):
        return "shared memory needs Linux"
    if not os.access(SHM_DIR, os.W_OK | os.X_OK):
        return "shared memory {} is missing or not writable".format(SHM_DIR)
    free = available_bytes()
    if free < min_bytes:
        return "shared memory {} has {} bytes free, fewer than {}".format(
            SHM_DIR, free, min_bytes)
    return None


def storage_order(array: np.ndarray) -> Order:
    """The order in which `Writer.put` stores ``array``: ``'F'`` for a
    Fortran-contiguous array that is not C-contiguous, else ``'C'`` (the
    order the wire's header names).

    Examples
    --------
    >>> import numpy as np
    >>> from pescador._background.shm import storage_order
    >>> storage_order(np.zeros((2, 3), order='F')), storage_order(np.zeros(3))
    ('F', 'C')
    """
    flags = array.flags
    return "F" if flags.f_contiguous and not flags.c_contiguous else "C"


def sweep(prefix: str) -> int:
    """Unlink every segment whose name starts with ``prefix``; return how
    many. Mapped segments stay valid (only their names go).

    Examples
    --------
    >>> from pescador._background.shm import sweep, run_prefix
    >>> sweep(run_prefix())
    0
    """
    if not prefix.startswith("pescador-"):
        raise ValueError("not a pescador prefix: {!r}".format(prefix))
    count = 0
    try:
        names = os.listdir(SHM_DIR)
    except OSError:
        return 0
    for name in names:
        if name.startswith(prefix):
            try:
                os.unlink(os.path.join(SHM_DIR, name))
                count += 1
            except OSError:
                pass
    return count



class Writer:
    """The worker side: copies arrays into shared memory, one descriptor
    each.

    Parameters
    ----------
    prefix : str
        The run's prefix (`run_prefix`, made by the consumer).
    worker : int in [0, 65535]
        This worker's index: its segments are ``prefix-<worker>...``.
    in_flight : int > 0
        At most this many arrays put and not yet taken by the consumer:
        `put` waits beyond (e.g. ``2 * hwm`` of the socket).
    slots : int >= 0 or None
        How many segments to keep and reuse (default ``in_flight + 4``).
        Each array in flight or held by the user occupies one; beyond,
        arrays go through one-shot segments (fresh memory: 16 MB arrays
        measured at 1.4-2.6 GB/s, against 13-20 GB/s through the pool).
    waiting : callable or None
        Called about every 0.1 s while `put` waits for the consumer; it may
        raise to abort the wait (e.g. when the consumer is dead).
    warn : bool
        Whether the first fallback warns (`ShmFallbackWarning`) in this
        process. Either way, `fallback` holds its reason.

    Attributes
    ----------
    fallback : str or None
        Why the first array that could not go through shared memory could
        not (None while every array could).

    Examples
    --------
    >>> import numpy as np
    >>> from pescador._background.shm import Writer, Reader, run_prefix
    >>> prefix = run_prefix()
    >>> writer, reader = Writer(prefix), Reader(prefix)
    >>> array = np.arange(6.0).reshape(2, 3)
    >>> descriptor = writer.put(array)
    >>> len(descriptor)
    8
    >>> array[:] = -1  # the generator reuses its buffer
    >>> reader.take(descriptor, array.dtype, (2, 3), 'C')
    array([[0., 1., 2.],
           [3., 4., 5.]])
    >>> writer.close(); reader.close()
    """

    def __init__(self, prefix: str, worker: int = 0, in_flight: int = 16,
                 slots: Optional[int] = None,
                 waiting: Optional[Callable[[], None]] = None,
                 warn: bool = True):
        if slots is None:
            slots = in_flight + 4
        if not 0 <= worker < 1 << 16 or not 0 <= slots < 1 << 16 \
                or in_flight < 1:
            raise ValueError("worker and slots must be in [0, 65535], "
                             "in_flight positive")
        self.prefix, self.worker, self.slots = prefix, worker, slots
        self.in_flight, self.waiting = in_flight, waiting
        self._sent = 0
        # the consumer's counter of arrays taken, once created
        self._taken: Optional[ctypes.c_uint64] = None
        self._control_mapping: Optional[Mapping] = None
        # per slot: [mapping, capacity, generation, slot (1-based)]
        self._pool: List[list] = []
        self._sequence = 0
        self.warn = warn
        self.fallback: Optional[str] = None

    def _path(self, slot: int, generation: int) -> Tuple[bytes, str]:
        descriptor = _DESCRIPTOR.pack(self.worker, slot, generation)
        return descriptor, os.path.join(
            SHM_DIR, "{}-{}".format(self.prefix, descriptor.hex()))

    def _create(self, slot: int, generation: int,
                nbytes: int) -> Tuple[bytes, int, str]:
        """A new segment for ``nbytes`` of data, space reserved: (its
        descriptor, an open descriptor, its path)."""
        if 2 * (nbytes + HEADER) > available_bytes():
            raise OSError(errno.ENOSPC, "not enough shared memory free")
        descriptor, path = self._path(slot, generation)
        fd = open_segment(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
        try:
            os.posix_fallocate(fd, 0, HEADER + nbytes)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        return descriptor, fd, path

    def _pooled(self, array: np.ndarray, order: Order) -> Optional[bytes]:
        """Put ``array`` in a free pooled slot of at least its size (a new
        or a replaced slot if need be); None when every slot is busy."""
        nbytes = array.nbytes
        best = free = None
        for entry in self._pool:
            if entry[0].flag.value == FREE:
                free = entry
                if entry[1] >= nbytes and (best is None
                                           or entry[1] < best[1]):
                    best = entry
        if best is not None:
            mapping = best[0]
            mapping.flag.value = BUSY
            np.copyto(array_over(mapping.view(nbytes, None), array.shape,
                              array.dtype, order), array, casting="no")
            return _DESCRIPTOR.pack(self.worker, best[3], best[2])
        if len(self._pool) < self.slots:
            slot, generation = len(self._pool) + 1, 1
        elif free is not None:  # replace a free slot that is too small
            slot, generation = free[3], free[2] + 1
        else:
            return None
        capacity = -(-(HEADER + nbytes) // PAGE) * PAGE - HEADER
        descriptor, fd, path = self._create(slot, generation, capacity)
        try:
            write_array(fd, array, order)
            # Mapped for later reuses, every page at once (MAP_POPULATE:
            # the pages exist now); a fault per 4 KB at the first reuse
            # cost 16 MB items measured here 20 to 40% of the throughput.
            mapping = Mapping(fd, HEADER + capacity)
        except BaseException:
            os.unlink(path)
            raise
        finally:
            os.close(fd)
        mapping.flag.value = BUSY
        entry = [mapping, capacity, generation, slot]
        if slot > len(self._pool):
            self._pool.append(entry)
        else:
            self._pool[slot - 1] = entry
        return descriptor

    def put(self, array: np.ndarray, order: Optional[Order] = None
            ) -> Optional[bytes]:
        """Copy ``array`` into shared memory; return its descriptor
        (`DESCRIPTOR_SIZE` bytes), or None if shared memory is missing or
        full (send the array over the socket then: the first time, this
        warns with `ShmFallbackWarning`).

        The array is stored in ``order`` (default `storage_order`), so it
        can change as soon as this returns.
        """
        nbytes = array.nbytes
        if not nbytes:
            raise ValueError("empty arrays do not go through shared memory")
        if order is None:
            order = storage_order(array)
        try:
            taken = self._taken
            if taken is None:
                taken = self._taken = self._control()
            if self._sent - taken.value >= self.in_flight:
                self._wait(taken)
            descriptor = self._pooled(array, order)
            if descriptor is None:
                descriptor = self._one_shot(array, order)
            self._sent += 1
            return descriptor
        except OSError as exc:
            if self.fallback is None:
                self.fallback = "shared memory unusable ({})".format(exc)
                if self.warn:
                    warnings.warn(
                        "pescador: {}; large arrays go over the socket "
                        "instead, which is slower. Give the container more "
                        "/dev/shm (e.g. docker --shm-size)".format(
                            self.fallback), ShmFallbackWarning, stacklevel=2)
            return None

    def _control(self) -> ctypes.c_uint64:
        """Create the control segment; its counter of arrays taken."""
        path = _control_path(self.prefix, self.worker)
        fd = open_segment(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
        try:
            os.posix_fallocate(fd, 0, PAGE)
            mapping = self._control_mapping = Mapping(fd, PAGE)
        except BaseException:
            os.unlink(path)
            raise
        finally:
            os.close(fd)
        return ctypes.c_uint64.from_address(mapping.address)

    def _wait(self, taken: ctypes.c_uint64) -> None:
        """Sleep until the consumer has taken an array in flight."""
        pause, waited = 50e-6, 0.0
        while self._sent - taken.value >= self.in_flight:
            time.sleep(pause)
            waited += pause
            pause = min(2 * pause, 0.005)
            if waited >= _HOOK_SECONDS:
                waited = 0.0
                if self.waiting is not None:
                    self.waiting()

    def _one_shot(self, array: np.ndarray, order: Order) -> bytes:
        """A segment used once: its memory goes when its array is
        dropped."""
        self._sequence = self._sequence % 0xFFFFFFFF + 1
        descriptor, fd, path = self._create(0, self._sequence, array.nbytes)
        try:
            write_array(fd, array, order)
        except BaseException:
            os.unlink(path)
            raise
        finally:
            os.close(fd)
        return descriptor

    def close(self) -> None:
        """Unmap the pool and unlink every segment of this writer that the
        consumer has not received (the consumer keeps what it has)."""
        self._pool = []
        self._taken = self._control_mapping = None
        sweep(worker_prefix(self.prefix, self.worker))


def _control_path(prefix: str, worker: int) -> str:
    return os.path.join(SHM_DIR, worker_prefix(prefix, worker) + _CONTROL)


class Reader:
    """The consumer side: arrays from the descriptors of the run's writers.

    Parameters
    ----------
    prefix : str
        The run's prefix, as given to the writers.

    Attributes
    ----------
    fell_back : bool
        Set once the consumer has warned that a writer fell back to the
        socket (so that it warns once a stream).

    Examples
    --------
    >>> import numpy as np
    >>> from pescador._background.shm import Writer, Reader, run_prefix
    >>> prefix = run_prefix()
    >>> writer, reader = Writer(prefix), Reader(prefix)
    >>> x = np.asfortranarray(np.arange(6, dtype='>i4').reshape(2, 3))
    >>> y = reader.take(writer.put(x), x.dtype, x.shape, 'F')
    >>> y.flags.f_contiguous, y.flags.writeable, y.dtype.str
    (True, True, '>i4')
    >>> writer.close(); reader.close()
    """

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.fell_back = False
        # (worker, slot) -> (generation, mapping)
        self._pool: Dict[Tuple[int, int], Tuple[int, Mapping]] = {}
        # worker -> (its counter of arrays taken, the mapping holding it)
        self._taken: Dict[int, Tuple[ctypes.c_uint64, Mapping]] = {}

    def _count(self, worker: int) -> None:
        """Tell ``worker`` one more of its arrays was taken."""
        counter = self._taken.get(worker)
        if counter is None:
            path = _control_path(self.prefix, worker)
            try:
                fd = open_segment(path, os.O_RDWR)
            except OSError as exc:
                raise DataError("Shared memory control segment {} is gone: "
                                "{}".format(path, exc)) from exc
            try:
                os.unlink(path)
                mapping = Mapping(fd, PAGE)
            finally:
                os.close(fd)
            counter = self._taken[worker] = (
                ctypes.c_uint64.from_address(mapping.address), mapping)
        counter[0].value += 1

    def _open(self, descriptor: bytes, nbytes: int) -> int:
        """Open, check and unlink the segment of ``descriptor``."""
        path = os.path.join(SHM_DIR, "{}-{}".format(self.prefix,
                                                    descriptor.hex()))
        try:
            fd = open_segment(path, os.O_RDWR)
        except OSError as exc:
            raise DataError("Shared memory segment {} is gone: {}".format(
                path, exc)) from exc
        try:
            os.unlink(path)
            stat = os.fstat(fd)
            if stat.st_uid != os.getuid() or stat.st_size < HEADER + nbytes:
                raise DataError("Shared memory segment {} holds {} bytes, "
                                "fewer than its header says ({})".format(
                                    path, stat.st_size - HEADER, nbytes))
        except BaseException:
            os.close(fd)
            raise
        return fd

    def take(self, descriptor: bytes, dtype: np.dtype, shape: Tuple[int, ...],
             order: Order, copy: bool = False) -> np.ndarray:
        """The array ``(shape, dtype, order)`` that `Writer.put` stored under
        ``descriptor``.

        Without ``copy``: a view of the shared memory, aligned and
        writeable, valid for as long as it (or a view of it) is held; then
        its segment goes back to the writer's pool, or is freed. With
        ``copy``: a private array, and the segment is released at once.
        """
        try:
            worker, slot, generation = _DESCRIPTOR.unpack(descriptor)
        except (struct.error, TypeError) as exc:
            raise DataError("Malformed shared memory descriptor {!r}".format(
                descriptor)) from exc
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        self._count(worker)
        if not slot:
            return self._take_one_shot(descriptor, dtype, shape, order,
                                       nbytes, copy)
        cached = self._pool.get((worker, slot))
        if cached is None or cached[0] != generation:
            fd = self._open(descriptor, nbytes)
            try:
                mapping = Mapping(fd, os.fstat(fd).st_size)
            finally:
                os.close(fd)
            self._pool[worker, slot] = generation, mapping
        else:
            mapping = cached[1]
            if mapping.size < HEADER + nbytes:
                raise DataError("Shared memory segment of {} bytes is too "
                                "small for {} bytes".format(mapping.size,
                                                            nbytes))
        if copy:
            array = np.array(array_over(mapping.view(nbytes, None), shape,
                                     dtype, order), order=order)
            mapping.flag.value = FREE
            return array
        return array_over(mapping.view(nbytes, Lease(mapping)), shape, dtype,
                       order)

    def _take_one_shot(self, descriptor: bytes, dtype: np.dtype,
                       shape: Tuple[int, ...], order: Order, nbytes: int,
                       copy: bool) -> np.ndarray:
        fd = self._open(descriptor, nbytes)
        try:
            if copy:  # one read into private memory, no mapping
                return read_array(fd, shape, dtype, order)
            mapping = Mapping(fd, HEADER + nbytes)
        finally:
            os.close(fd)
        return array_over(mapping.view(nbytes, mapping), shape, dtype, order)

    def close(self) -> None:
        """Forget the pool (each mapping goes with its last array), and
        unlink every segment of the run not received. Call it once the
        writers have exited (or been killed)."""
        self._pool, self._taken = {}, {}
        sweep(self.prefix + "-")

