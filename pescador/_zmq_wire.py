"""The ZMQStreamer wire format, and its public helpers `zmq_send_data` and
`zmq_recv_data` (re-exported by `pescador.zmq_stream`).

A data message is a header frame, a kind byte ``D``, a 16-byte token, then
JSON ``[[key, dtype, shape, order], ...]``, followed by one frame per array
holding its raw memory (C order, or Fortran order for Fortran arrays).
Items of at most 64 KB travel instead as one frame (kind ``S``: the header
with its length, then each array at a 16-byte aligned offset), which costs
one small copy but halves the per-message overhead. Headers are cached on
both sides, so a stream of same-shaped items pays for JSON once. Within a
`ZMQStreamer` stream, the first large item of each layout names its header
(kind ``N``: a 2-byte name before the JSON) and the next ones send only
the name (kind ``R``), so that their header frame is short enough for
ZeroMQ to carry without an allocation (see `_encode`). A worker's
exception travels as an error message (kind ``E``: the pickled exception,
its traceback text and a one-line description), and the end of the stream
as an end message (kind ``Q``). A worker's checkpoint travels in order
with its items as a snapshot message (kind ``C``, then one frame of JSON:
``{"count": items sent before it, "state": the share's state}``, or
``"error"`` instead of ``"state"`` when the share cannot checkpoint); it is
JSON, never pickle, so the consumer runs nothing of the sender's. Within a stream that has shared memory
(`pescador._background.shm`), an item holding an array of at least
`THRESHOLD` bytes travels as a memory message: its arrays of that size are
copied once into shared memory and the header frame carries one 8-byte
descriptor per array instead (kind ``K``: the name and the JSON in the
header frame, the descriptors in the next frame; then kind ``M``: the name
and the descriptors, 27 bytes for one array). Eight zero bytes stand for
an array that follows as a frame (a small one, or a large one the worker
could not place in shared memory). The consumer ignores messages that do not
carry the token of its worker (another local process connecting to the
port can inject nothing, and nothing it sends is unpickled).
"""

import json
import logging
import pickle
import traceback
import warnings

import numpy as np

from ._background.shm import (DESCRIPTOR_SIZE, THRESHOLD,
                              ShmFallbackWarning, storage_order)
from .exceptions import DataError, PescadorError

__all__ = ["zmq_send_data", "zmq_recv_data"]

_DATA, _SMALL, _ERROR, _END = b"D", b"S", b"E", b"Q"
_SNAPSHOT = b"C"
_NAMED, _NAME_REF = b"N", b"R"
_MEMORY_NAMED, _MEMORY = b"K", b"M"
_NO_SEGMENT = bytes(DESCRIPTOR_SIZE)  # this array follows as a frame
_UNNAMED = b"\xff\xff"  # a K message when every name is taken
_TOKEN_SIZE = 16
_RCVMORE = 13  # zmq.RCVMORE
_NO_TOKEN = bytes(_TOKEN_SIZE)
_PREFIX = 1 + _TOKEN_SIZE
_NAME_SIZE = 2
_MAX_NAMES = 256
_ALIGN = 16  # the largest alignment of a numpy dtype (long double)
_SMALL_BYTES = 1 << 16  # below this, one frame beats zero-copy frames
_CACHE_SIZE = 256
_logger = logging.getLogger("pescador.zmq_stream")

_send_cache: dict = {}
_recv_cache: dict = {}


class RemoteTraceback(PescadorError):
    """The traceback text of an exception raised in a `ZMQStreamer` worker.

    Attached as ``__cause__`` of the exception re-raised in the consumer, so
    that the worker's stack is printed along with the consumer's.

    Examples
    --------
    >>> import pescador
    >>> from pescador.zmq_stream import RemoteTraceback
    >>> cause = RemoteTraceback('Traceback (most recent call last): ...')
    >>> cause.traceback
    'Traceback (most recent call last): ...'
    >>> isinstance(cause, pescador.PescadorError)
    True
    """

    def __init__(self, text):
        super().__init__(text)
        self.traceback = text

    def __str__(self):
        return "\n\nWorker traceback:\n" + self.traceback


def _describe(value):
    text = repr(value)
    return "{} {}".format(type(value).__name__,
                          text if len(text) <= 60 else text[:57] + "...")


def _checked(key, value):
    """``value`` as an array we can send, or `DataError`."""
    if not isinstance(key, str):
        raise DataError("Item keys must be strings; got key {} holding "
                        "{}".format(_describe(key), type(value).__name__))
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        raise DataError("Item key {!r} holds {}: expected a numpy "
                        "array".format(key, _describe(value)))
    if isinstance(value, np.ma.MaskedArray):
        raise DataError("Item key {!r} holds a masked array: its mask would "
                        "be lost; expected a plain numpy array (send the "
                        "mask as another key, e.g. np.ma.getmaskarray)"
                        .format(key))
    if value.dtype.hasobject:
        raise DataError("Item key {!r} holds an array of dtype {}: object "
                        "arrays cannot be sent, expected a numeric, bool, "
                        "string or datetime dtype".format(key, value.dtype))
    return value


def _buffer(array):
    """(C-contiguous memory of ``array`` exporting a buffer, its order)."""
    order = "C"
    if not array.flags.c_contiguous:
        if array.flags.f_contiguous:
            array, order = array.T, "F"
        else:
            array = np.ascontiguousarray(array)
    if array.dtype.kind in "mMV":
        # datetimes (also inside structs) do not export buffers; raw
        # bytes of the same item size do.
        array = array.reshape(-1).view(np.uint8) if array.size else b""
    return array, order


def _aligned(n):
    return -(-n // _ALIGN) * _ALIGN


def _offsets(body, sizes):
    """Where each array starts in a one-frame message, and its length."""
    offsets, offset = [], _aligned(_PREFIX + 4 + len(body))
    for size in sizes:
        offsets.append(offset)
        offset = _aligned(offset + size)
    return offsets, offset


def _send_layout(signature):
    """(JSON header, its length as 4 bytes, total nbytes of the arrays, pads
    of a one-frame message)."""
    layout = _send_cache.get(signature)
    if layout is None:
        body = json.dumps(
            [[key, dtype.str if dtype.fields is None
              else np.lib.format.dtype_to_descr(dtype), shape, order]
             for key, dtype, shape, order in signature],
            separators=(",", ":")).encode()
        sizes = [int(np.prod(shape)) * dtype.itemsize
                 for _, dtype, shape, _ in signature]
        offsets, end = _offsets(body, sizes)
        ends = [_PREFIX + 4 + len(body)] + [o + n for o, n in
                                             zip(offsets, sizes)]
        pads = [bytes(b - a) for a, b in zip(ends, offsets + [end])]
        layout = body, len(body).to_bytes(4, "little"), sum(sizes), pads
        if len(_send_cache) >= _CACHE_SIZE:
            _send_cache.clear()
        _send_cache[signature] = layout
    return layout


def _encode(data, token=_NO_TOKEN, names=None, writer=None, in_flight=0):
    """The frames of the data message for the dict ``data`` (a memory
    message if it holds an array of `THRESHOLD` bytes and a shared memory
    ``writer`` is given: see `_encode_shared`).

    ``names`` (a dict, kept by the sender of one stream) turns on header
    names: the first large item of each layout sends its header named, the
    next ones only that name, in a header frame of 19 bytes. ZeroMQ keeps
    a frame of at most 33 bytes inside the message itself, so the receiver
    allocates nothing for it. A longer one is allocated between the large
    arrays and freed (once decoded) before them, which fragments the heap:
    with 45-byte headers, receiving 1 MB items cost 3 to 10 times the page
    faults and 20 to 30% of the throughput (measured).
    """
    if not isinstance(data, dict):
        raise DataError("ZMQStreamer items must be dicts of numpy arrays; "
                        "got {}".format(_describe(data)))
    signature, buffers = [], []
    for key, value in data.items():
        if type(value) is np.ndarray and type(key) is str \
                and value.dtype.kind in "biufcSU" and value.flags.c_contiguous:
            buffer, order = value, "C"
        else:
            buffer, order = _buffer(_checked(key, value))
        signature.append((key, value.dtype, value.shape, order))
        buffers.append(buffer)
    signature = tuple(signature)  # type: ignore[assignment]
    body, size, nbytes, pads = _send_layout(signature)
    if writer is not None and nbytes >= THRESHOLD:
        frames = _encode_shared(data, token, names, writer, in_flight)
        if frames is not None:
            return frames
    if nbytes > _SMALL_BYTES:
        if names is not None:
            name = names.get(signature)
            if name is not None:
                return [_NAME_REF + token + name] + buffers
            if len(names) < _MAX_NAMES:
                name = len(names).to_bytes(_NAME_SIZE, "little")
                names[signature] = name
                return [_NAMED + token + name + body] + buffers
        return [_DATA + token + body] + buffers
    parts = [_SMALL, token, size, body]
    for buffer, pad in zip(buffers, pads):
        parts += [pad, buffer]
    parts.append(pads[-1])
    return [b"".join(parts)]


def _encode_shared(data, token, names, writer, in_flight):
    """The frames of a memory message for ``data``, or None if it holds no
    array of `THRESHOLD` bytes (then `_encode` does the job).

    Each such array is copied into shared memory by ``writer`` now, so
    the values sent are those of this moment; one it cannot place there
    (shared memory full) follows as a frame, like the small ones, which
    the caller sends with ``copy=True`` for the same reason.
    ``in_flight`` is the writer's bound on arrays put and not yet taken,
    raised to the item's count of large arrays (else the writer would
    wait for the consumer to take arrays of a message not sent yet).
    """
    large = 0
    for value in data.values():
        if type(value) is np.ndarray and value.nbytes >= THRESHOLD:
            large += 1
    if not large:
        return None
    writer.in_flight = max(in_flight, large)
    signature, descriptors, frames = [], [], []
    for key, value in data.items():
        if type(value) is not np.ndarray or type(key) is not str \
                or value.dtype.kind not in "biufcSU":
            value = _checked(key, value)  # (imports numpy.ma: 10 ms)
        descriptor = None
        if value.nbytes >= THRESHOLD:
            order = storage_order(value)
            descriptor = writer.put(value, order)
        if descriptor is None:
            buffer, order = _buffer(value)
            descriptor = _NO_SEGMENT
            frames.append(buffer)
        signature.append((key, value.dtype, value.shape, order))
        descriptors.append(descriptor)
    signature = tuple(signature)  # type: ignore[assignment]
    descriptors = b"".join(descriptors)  # type: ignore[assignment]
    name = names.get(signature)
    if name is not None:
        return [_MEMORY + token + name + descriptors] + frames
    if len(names) < _MAX_NAMES:
        name = names[signature] = len(names).to_bytes(_NAME_SIZE, "little")
    else:
        name = _UNNAMED
    body = _send_layout(signature)[0]
    return [_MEMORY_NAMED + token + name + body, descriptors] + frames


def _parse_entry(entry):
    key, descr, shape, order = entry
    dtype = np.dtype(descr) if isinstance(descr, str) \
        else np.lib.format.descr_to_dtype(descr)
    if not isinstance(key, str) or dtype.hasobject or order not in "CF":
        raise ValueError("bad key, dtype or order")
    shape = tuple(int(n) for n in shape)
    return key, dtype, shape, order, int(np.prod(shape)) * dtype.itemsize


def _recv_spec(body):
    """Per array (key, dtype, shape, order, nbytes, offset), and the
    length of a one-frame message."""
    layout = _recv_cache.get(body)
    if layout is None:
        try:
            entries = [_parse_entry(entry) for entry in json.loads(body)]
        except (ValueError, TypeError) as exc:
            raise DataError("Malformed ZMQStreamer header {!r}".format(
                body[:80])) from exc
        offsets, end = _offsets(body, [entry[-1] for entry in entries])
        layout = ([entry + (offset,) for entry, offset
                   in zip(entries, offsets)], end)
        if len(_recv_cache) >= _CACHE_SIZE:
            _recv_cache.clear()
        _recv_cache[body] = layout
    return layout


def _array(buffer, dtype, shape, order, nbytes, offset=0, copy=False):
    """The array ``(shape, dtype, order)`` in ``buffer`` at ``offset``: a
    view of it unless ``copy``, or unless the view is not aligned and
    writeable."""
    if not nbytes:
        return np.empty(shape, dtype, order=order)
    if order == "C":  # parsing an order keyword costs as much as the rest
        array = np.ndarray(shape, dtype, buffer, offset)
    else:
        array = np.ndarray(shape, dtype, buffer, offset, order=order)
    if copy or not array.flags.behaved:
        array = array.copy(order="K")
    return array


def _decode_small(head):
    """The item packed in the one-frame message ``head`` (bytes)."""
    size = int.from_bytes(head[_PREFIX:_PREFIX + 4], "little")
    spec, end = _recv_spec(head[_PREFIX + 4:_PREFIX + 4 + size])
    if len(head) != end:
        raise DataError("ZMQStreamer message of {} bytes does not match "
                        "its header ({} bytes)".format(len(head), end))
    # One copy gives all arrays writeable memory, aligned as malloc aligns.
    frame = bytearray(head)
    return {key: _array(frame, dtype, shape, order, nbytes, offset)
            for key, dtype, shape, order, nbytes, offset in spec}


def _decode_frames(header, frames, copy=False):
    """The item of a data message: its header, then one frame an array."""
    spec, _ = _recv_spec(header)
    if len(frames) != len(spec):
        raise DataError("ZMQStreamer message of {} frames does not match "
                        "its header ({} arrays)".format(len(frames),
                                                        len(spec)))
    item = {}
    for (key, dtype, shape, order, nbytes, _), frame in zip(spec, frames):
        if len(frame) != nbytes:
            raise DataError("ZMQStreamer frame of {} bytes does not match "
                            "its header ({} bytes for {!r})".format(
                                len(frame), nbytes, key))
        item[key] = _array(frame, dtype, shape, order, nbytes, 0, copy)
    return item


def _decode_shared(body, descriptors, frames, copy, reader):
    """The item of a memory message: arrays from shared memory (views of
    it unless ``copy``), or from the frames where a descriptor is zero."""
    spec, _ = _recv_spec(body)
    if reader is None or len(descriptors) != DESCRIPTOR_SIZE * len(spec):
        raise DataError("ZMQStreamer memory message with {} bytes of "
                        "descriptors for {} arrays{}".format(
                            len(descriptors), len(spec),
                            "" if reader else ", but no shared memory"))
    item, position, start = {}, 0, 0
    for key, dtype, shape, order, nbytes, _ in spec:
        end = start + DESCRIPTOR_SIZE
        descriptor = descriptors[start:end]
        start = end
        if descriptor != _NO_SEGMENT:
            item[key] = reader.take(descriptor, dtype, shape, order, copy)
            continue
        if position >= len(frames) or len(frames[position]) != nbytes:
            raise DataError("ZMQStreamer memory message does not match its "
                            "header (frame {} for {!r})".format(position,
                                                                key))
        if nbytes >= THRESHOLD and not reader.fell_back:
            reader.fell_back = True
            _logger.warning("a worker found shared memory full: its large "
                            "arrays go over the socket instead")
            warnings.warn(
                "pescador: a ZMQStreamer worker found shared memory full; "
                "its large arrays go over the socket instead, which is "
                "slower. Give the container more /dev/shm (e.g. docker "
                "--shm-size)", ShmFallbackWarning, stacklevel=4)
        item[key] = _array(frames[position], dtype, shape, order, nbytes, 0,
                           copy)
        position += 1
    if position != len(frames):
        raise DataError("ZMQStreamer memory message of {} frames does not "
                        "match its header ({} sent as frames)".format(
                            len(frames), position))
    return item


def _error_frames(exc, token):
    text = "".join(traceback.format_exception(type(exc), exc,
                                              exc.__traceback__))
    try:
        pickled = pickle.dumps(exc) if isinstance(exc, Exception) else b""
    except Exception:
        pickled = b""
    summary = "".join(traceback.format_exception_only(type(exc), exc))
    return [_ERROR + token, pickled, text.encode(), summary.strip().encode()]


def _snapshot_frames(count, token, state=None, error=None):
    """The snapshot message: after ``count`` items, the share's ``state``
    (JSON types), or the ``error`` saying why it has none."""
    body = {"count": count, "state": state} if error is None \
        else {"count": count, "error": error}
    return [_SNAPSHOT + token, json.dumps(body).encode()]


def _snapshot(frames):
    """The dict of a snapshot message; `DataError` if malformed."""
    body = json.loads(bytes(frames[0]))
    if not (isinstance(body, dict) and isinstance(body.get("count"), int)
            and ("state" in body or isinstance(body.get("error"), str))):
        raise DataError("Malformed ZMQStreamer snapshot message")
    return body


def _remote_error(frames, unpickle):
    """The exception to raise for an error message, cause attached.

    Only ``unpickle`` the worker's exception when the message is
    authenticated (it carries the token of the stream): unpickling runs
    code chosen by the sender.
    """
    pickled, text, summary = (bytes(frame) for frame in frames)
    exc = None
    if pickled and unpickle:
        try:
            exc = pickle.loads(pickled)
        except Exception:
            exc = None
    if not isinstance(exc, Exception):
        exc = PescadorError("ZMQStreamer worker raised {}".format(
            summary.decode(errors="replace")))
    exc.__cause__ = RemoteTraceback(text.decode(errors="replace"))
    return exc


def _read(socket, flags=0, copy=False, track=False, token=None,
          names=None, reader=None):
    """Receive one message: (kind, item or exception or None).

    With a ``token``, a message that does not carry it is ignored:
    ``(None, None)``, and only then is an error message's exception
    unpickled (the stream is authenticated); without, it becomes a
    `PescadorError`. A malformed message raises `DataError`, whatever is
    wrong with it. ``names`` (a dict kept by the receiver of one stream)
    accepts the named headers of `_encode`. The first frame (a header, or
    a whole small item) is received as bytes; the array frames after it
    without copying, and whether more follow is read from each frame: a
    ``RCVMORE`` query per frame costs more than the rest of a large
    message's handling. With ``copy``, received arrays are copied out of the message
    memory (and out of shared memory). ``reader`` (the stream's
    `pescador._background.shm.Reader`) accepts memory messages.
    """
    # The first frame as bytes, not a zmq.Frame: pyzmq checks for signals
    # when it frees a Frame, and a Ctrl-C raised there is lost ("Exception
    # ignored in Frame.__dealloc__"). Here it is raised by recv itself.
    head = socket.recv(flags, copy=True)
    more = socket.get(_RCVMORE)
    kind = head[:1]
    if token is not None and head[1:_PREFIX] != token:
        kind = None
    elif kind == _SMALL and not more:
        try:
            return _DATA, _decode_small(head)
        except DataError:
            raise
        except Exception as exc:
            raise _malformed(exc) from exc
    rest = []
    while more:
        frame = socket.recv(flags, copy=False, track=track)
        rest.append(frame)
        more = frame.more
    if kind is None:
        return None, None
    try:
        return _decode(kind, head, rest, copy, token is not None, names,
                       reader)
    except DataError:
        raise
    except Exception as exc:
        raise _malformed(exc) from exc


def _malformed(exc):
    return DataError("Malformed ZMQStreamer message ({}: {})".format(
        type(exc).__name__, exc))


def _decode(kind, head, rest, copy, trusted, names, reader=None):
    """(kind, item or exception) of a received message (see `_read`)."""
    if kind == _DATA:
        return kind, _decode_frames(head[_PREFIX:], rest, copy)
    if names is not None:
        if kind == _MEMORY:
            body = names.get(head[_PREFIX:_PREFIX + _NAME_SIZE])
            if body is None:
                raise DataError("ZMQStreamer message refers to an unknown "
                                "header {!r}".format(head[_PREFIX:]))
            return _DATA, _decode_shared(body, head[_PREFIX + _NAME_SIZE:],
                                         rest, copy, reader)
        if kind == _MEMORY_NAMED and rest:
            body = head[_PREFIX + _NAME_SIZE:]
            names[head[_PREFIX:_PREFIX + _NAME_SIZE]] = body
            return _DATA, _decode_shared(body, bytes(rest[0]), rest[1:],
                                         copy, reader)
        if kind == _NAME_REF:
            body = names.get(head[_PREFIX:])
            if body is None:
                raise DataError("ZMQStreamer message refers to an unknown "
                                "header {!r}".format(head[_PREFIX:]))
            return _DATA, _decode_frames(body, rest, copy)
        if kind == _NAMED:
            body = head[_PREFIX + _NAME_SIZE:]
            names[head[_PREFIX:_PREFIX + _NAME_SIZE]] = body
            return _DATA, _decode_frames(body, rest, copy)
    if kind == _ERROR and len(rest) == 3:
        return kind, _remote_error(rest, trusted)
    if kind == _END:
        return kind, None
    if kind == _SNAPSHOT and len(rest) == 1:
        return kind, _snapshot(rest)
    raise DataError("Unknown ZMQStreamer message kind {!r}".format(kind))


def zmq_send_data(socket, data, flags=0, copy=True, track=False):
    """Send a dict of numpy arrays over a ZeroMQ socket.

    The message is one header frame (keys, dtypes, shapes, memory order)
    followed by one frame per array. C- and Fortran-contiguous arrays are
    sent from their own memory (without copying when ``copy=False``); other
    arrays are first made C-contiguous. Items whose arrays hold at most
    64 KB in all are packed into a single frame instead (one small copy,
    much less overhead per message).

    Parameters
    ----------
    socket : zmq.Socket
    data : dict of str -> np.ndarray
        Numpy scalars are sent as 0-d arrays.
    flags, copy, track
        Passed to ``socket.send_multipart``.

    Returns
    -------
    None, or a ``zmq.MessageTracker`` if ``track``.

    Raises
    ------
    DataError
        If ``data`` is not a dict, a key is not a string, or a value is not
        a numpy array or is an object array.

    See Also
    --------
    zmq_recv_data

    Examples
    --------
    >>> import numpy as np, zmq
    >>> import pescador
    >>> context = zmq.Context()
    >>> receiver = context.socket(zmq.PULL)
    >>> port = receiver.bind_to_random_port('tcp://127.0.0.1')
    >>> sender = context.socket(zmq.PUSH)
    >>> _ = sender.connect('tcp://127.0.0.1:{}'.format(port))
    >>> pescador.zmq_send_data(sender, {'X': np.arange(3.0)})
    >>> pescador.zmq_recv_data(receiver)
    {'X': array([0., 1., 2.])}
    >>> sender.close(); receiver.close(); context.term()
    """
    return socket.send_multipart(_encode(data), flags=flags, copy=copy,
                                 track=track)


def zmq_recv_data(socket, flags=0, copy=True, track=False):
    """Receive a dict of numpy arrays sent by `zmq_send_data`.

    Parameters
    ----------
    socket : zmq.Socket
    flags : int
        Passed to ``socket.recv`` (e.g. ``zmq.NOBLOCK``).
    copy : bool
        If True, the arrays are copied out of the message memory (one
        copy); if False, large arrays are views of the received message
        memory (no copy), and only items of at most 64 KB, packed in one
        frame, are copied out of it.
    track : bool
        Passed to ``socket.recv``.

    Returns
    -------
    dict of str -> np.ndarray
        Same keys, dtypes, shapes, memory order and values as sent; the
        arrays are aligned and writeable (views of the message memory
        unless ``copy``, or unless that memory is not aligned).

    Raises
    ------
    DataError
        If the message is not a well-formed data message (and only then:
        truncated or garbage frames raise nothing else).
    PescadorError
        If the message reports an exception raised by a `ZMQStreamer`
        worker: a `PescadorError` naming it, with the worker's traceback
        as ``__cause__``. The exception itself is never unpickled here
        (unpickling runs code chosen by the sender, and anyone who can
        connect to the socket may send).

    See Also
    --------
    zmq_send_data

    Examples
    --------
    >>> import numpy as np, zmq
    >>> import pescador
    >>> context = zmq.Context()
    >>> a, b = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
    >>> _ = a.bind('inproc://example'), b.connect('inproc://example')
    >>> pescador.zmq_send_data(a, {'y': np.array(7, dtype='>i2')})
    >>> item = pescador.zmq_recv_data(b, copy=False)
    >>> int(item['y']), item['y'].dtype.str, item['y'].flags.writeable
    (7, '>i2', True)
    >>> context.destroy()
    """
    kind, payload = _read(socket, flags, copy=copy, track=track)
    if kind == _ERROR:
        raise payload
    if kind != _DATA:
        raise DataError("Expected a data message, got the end-of-stream "
                        "message")
    return payload
