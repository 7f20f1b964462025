"""Shared memory segments as numpy arrays, without a file descriptor per
mapping: the plumbing of `pescador._background.shm`.

``mmap.mmap`` keeps a duplicate of the file descriptor for as long as the
mapping lives (before Python 3.13), so a user holding thousands of arrays
would run out of descriptors; ``mmap(2)`` through ctypes does not. A
segment starts with a 64-byte header whose first byte is the free/busy
flag of a pooled segment; the data follows, 64-byte aligned.
"""

import ctypes
import mmap
import os
from typing import Literal, Tuple

import numpy as np

from ..exceptions import DataError

Order = Literal["C", "F"]

HEADER = 64  # the flag byte, then padding: data stays 64-byte aligned
FREE, BUSY = 0, 1
PAGE = mmap.PAGESIZE
_PROT = mmap.PROT_READ | mmap.PROT_WRITE
# MAP_POPULATE (Linux, constant in Python 3.10+) maps every page at once:
# much cheaper than a page fault per 4 KB on first access.
_MAP = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
_MAX_IO = 1 << 30

_libc = None


def _c():
    """libc's mmap and munmap, loaded on first use."""
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                              ctypes.c_int, ctypes.c_int, ctypes.c_long)
        libc.munmap.restype = ctypes.c_int
        libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
        _libc = libc
    return _libc


class Mapping:
    """A shared mapping of a whole segment, unmapped when dropped.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from pescador._background.mappings import (HEADER, Mapping,
    ...                                             array_over)
    >>> fd, path = tempfile.mkstemp(dir='/dev/shm', prefix='pescador-doc-')
    >>> os.posix_fallocate(fd, 0, HEADER + 24)
    >>> mapping = Mapping(fd, HEADER + 24)
    >>> os.close(fd); os.unlink(path)  # the memory lives in the mapping
    >>> x = array_over(mapping.view(24, mapping), (2, 3), np.dtype('<f4'),
    ...                'F')
    >>> x[:] = 1
    >>> x.flags.f_contiguous, float(x.sum()), x.ctypes.data % 64
    (True, 6.0, 0)
    """

    __slots__ = ("address", "size", "flag", "pid", "__weakref__")

    def __init__(self, fd: int, size: int, populate: bool = True):
        address = _c().mmap(None, size, _PROT,
                            _MAP if populate else mmap.MAP_SHARED, fd, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        self.address, self.size, self.pid = address, size, os.getpid()
        self.flag = ctypes.c_uint8.from_address(address)

    def view(self, nbytes: int, owner: object) -> np.ndarray:
        """The ``nbytes`` of data as a uint8 array whose base is
        ``owner``."""
        return np.asarray(Buffer(self.address + HEADER, nbytes, owner))

    def __del__(self):
        # A forked child inherits the object but must not unmap for the
        # parent (its copy of the mapping goes with it anyway). No pid:
        # __init__ was interrupted (a worker's stop request raises
        # anywhere), and a message on stderr would be noise.
        if getattr(self, "pid", None) == os.getpid() and _libc is not None:
            _libc.munmap(self.address, self.size)


class Buffer:
    """Exposes raw memory to numpy, keeping ``owner`` alive meanwhile."""

    __slots__ = ("__array_interface__", "owner")

    def __init__(self, address: int, nbytes: int, owner: object):
        self.__array_interface__ = {
            "shape": (nbytes,), "typestr": "|u1", "version": 3,
            "data": (address, False)}
        self.owner = owner


class Lease:
    """Owns a received array of a pooled segment; dropping it (with the
    last view of the array) hands the segment back to the worker."""

    __slots__ = ("mapping",)

    def __init__(self, mapping: Mapping):
        self.mapping = mapping

    def __del__(self):
        mapping = getattr(self, "mapping", None)
        if mapping is not None and mapping.pid == os.getpid():
            mapping.flag.value = FREE


def open_segment(path: str, flags: int) -> int:
    """Open a segment, never through a symbolic link."""
    return os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                   0o600)


def _write_all(fd: int, data: np.ndarray) -> None:
    view = memoryview(data).cast("B")  # type: ignore[arg-type]
    offset = 0
    while offset < len(view):
        offset += os.pwrite(fd, view[offset:offset + _MAX_IO],
                            HEADER + offset)


def write_array(fd: int, array: np.ndarray, order: Order) -> None:
    """Write ``array`` in ``order`` into the segment ``fd``. Into fresh
    pages, ``pwrite`` is about twice as fast as a copy through a mapping
    (which faults each page in first)."""
    flags = array.flags
    if not (flags.c_contiguous if order == "C" else flags.f_contiguous):
        array = np.array(array, order=order)
    _write_all(fd, raw_bytes(array))


def raw_bytes(array: np.ndarray) -> np.ndarray:
    """The memory of a C- or F-contiguous array as flat uint8 (datetimes do
    not export buffers; their bytes do)."""
    if not array.flags.c_contiguous:
        array = array.T
    return array.reshape(-1).view(np.uint8)


def array_over(buffer: np.ndarray, shape: Tuple[int, ...], dtype: np.dtype,
            order: Order) -> np.ndarray:
    """The array ``(shape, dtype, order)`` over ``buffer``."""
    return np.ndarray(shape, dtype, buffer, 0, order=order)


def read_array(fd: int, shape: Tuple[int, ...], dtype: np.dtype,
               order: Order) -> np.ndarray:
    """A private array read from the segment ``fd`` (one copy, no
    mapping)."""
    array = np.empty(shape, dtype, order=order)
    view = memoryview(raw_bytes(array))  # type: ignore[arg-type]
    offset = 0
    while offset < len(view):
        read = os.preadv(fd, [view[offset:offset + _MAX_IO]], HEADER + offset)
        if not read:
            raise DataError("Shared memory segment truncated")
        offset += read
    return array
