"""Tests for pescador.zmq_stream: the wire format and ZMQStreamer's
behaviour (round trips, iteration, muxes and maps inside, parameters)."""

import copy

import numpy as np
import pytest
import zmq

import pescador
from pescador.zmq_stream import ZMQStreamer
from tests import streams

from .zmq_helpers import ARRAYS, assert_same_item

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def pair():
    context = zmq.Context()
    receiver = context.socket(zmq.PULL)
    port = receiver.bind_to_random_port("tcp://127.0.0.1")
    sender = context.socket(zmq.PUSH)
    sender.connect("tcp://127.0.0.1:{}".format(port))
    yield sender, receiver
    context.destroy(linger=0)


# -- the wire format ------------------------------------------------------

@pytest.mark.parametrize("copy_", [True, False])
def test_wire_round_trip_every_dtype_shape_layout(pair, copy_):
    sender, receiver = pair
    for key, array in ARRAYS.items():
        pescador.zmq_send_data(sender, {key: array}, copy=copy_)
        assert_same_item(pescador.zmq_recv_data(receiver, copy=copy_),
                         {key: array})


def test_wire_copy_decides_whether_large_arrays_view_the_message(pair):
    sender, receiver = pair
    big = np.arange(1 << 15, dtype=np.float64)  # 256 KB: its own frame
    for copy_, expect_view in ((True, False), (False, True)):
        pescador.zmq_send_data(sender, {"x": big})
        array = pescador.zmq_recv_data(receiver, copy=copy_)["x"]
        assert array.flags.owndata is not expect_view
        assert isinstance(array.base, zmq.Frame) is expect_view
        assert array.flags.writeable and array.flags.aligned
        np.testing.assert_array_equal(array, big)


def test_wire_ignores_messages_without_the_token(pair):
    from pescador._zmq_wire import _DATA, _encode, _read
    sender, receiver = pair
    token = b"t" * 16
    sender.send_multipart([b"D" + bytes(16) + b"[]", b"a", b"b"])
    sender.send_multipart(_encode({"x": np.ones(1 << 15)}, token),
                          copy=False)
    assert _read(receiver, token=token) == (None, None)
    kind, item = _read(receiver, token=token)
    assert kind == _DATA and item["x"].shape == (1 << 15,)


def test_wire_named_headers_fit_in_a_zeromq_message(pair, monkeypatch):
    from pescador import _zmq_wire as wire
    sender, receiver = pair
    token, names, received = b"t" * 16, {}, {}
    # Three large layouts, then the first again; at most two get names.
    monkeypatch.setattr(wire, "_MAX_NAMES", 2)
    items = [{"x": np.full((100, 200), i, dtype)} for i, dtype
             in enumerate(["<f8", ">i4", "<c8"])] * 2
    kinds = []
    for item in items:
        frames = wire._encode(item, token, names)
        kinds.append(frames[0][:1])
        sender.send_multipart(frames, copy=False)
        kind, got = wire._read(receiver, token=token, names=received)
        assert kind == wire._DATA
        assert_same_item(got, item)
    assert kinds == [b"N", b"N", b"D", b"R", b"R", b"D"]
    # ZeroMQ stores frames of at most 33 bytes inside the message (no
    # allocation): a named header's frame must stay that short.
    assert len(wire._encode(items[0], token, names)[0]) <= 33
    # A name the receiver never saw, or any name without a stream, is bad.
    sender.send_multipart(wire._encode(items[0], token, names), copy=False)
    with pytest.raises(pescador.DataError, match="unknown header"):
        wire._read(receiver, token=token, names={})
    sender.send_multipart(wire._encode(items[0], token, names), copy=False)
    with pytest.raises(pescador.DataError, match="Unknown .* kind b'R'"):
        pescador.zmq_recv_data(receiver)


def test_wire_many_keys_and_scalars(pair):
    sender, receiver = pair
    item = {"a": np.float32(1.5), "b": np.int64(-3), "c": np.arange(5),
            "d": np.zeros((100, 300)), "e": np.array(True)}
    pescador.zmq_send_data(sender, item)
    received = pescador.zmq_recv_data(receiver)
    assert received["a"].shape == () and received["a"].dtype == np.float32
    assert_same_item(received, {k: np.asarray(v) for k, v in item.items()})


def test_wire_empty_dict(pair):
    sender, receiver = pair
    pescador.zmq_send_data(sender, {})
    assert pescador.zmq_recv_data(receiver) == {}


@pytest.mark.parametrize("item, words", [
    ([1, 2], ["dict", "list"]),
    ({"x": [1, 2]}, ["'x'", "list"]),
    ({"x": "text"}, ["'x'", "str"]),
    ({"x": None}, ["'x'", "NoneType"]),
    ({"x": 3}, ["'x'", "int"]),
    ({"x": np.array([None, 1])}, ["'x'", "object"]),
    ({1: np.zeros(2)}, ["key", "int", "ndarray"]),
])
def test_wire_bad_items_raise_data_error(pair, item, words):
    sender, _ = pair
    with pytest.raises(pescador.DataError) as info:
        pescador.zmq_send_data(sender, item)
    for word in words:
        assert word in str(info.value)


def test_wire_malformed_message_raises_data_error(pair):
    sender, receiver = pair
    sender.send_multipart([b"D" + bytes(16) + b"[[1,2]]", b"xx"])
    with pytest.raises(pescador.DataError, match="Malformed"):
        pescador.zmq_recv_data(receiver)
    sender.send_multipart([b"D" + bytes(16) + b'[["x","<f8",[3],"C"]]',
                           b"short"])
    with pytest.raises(pescador.DataError,
                       match="frame of 5 bytes does not match its header "
                             r"\(24 bytes for 'x'\)"):
        pescador.zmq_recv_data(receiver)
    sender.send_multipart([b"D" + bytes(16) + b'[["x","<f8",[3],"C"]]',
                           bytes(24), bytes(24)])
    with pytest.raises(pescador.DataError, match=r"2 frames .*\(1 arrays\)"):
        pescador.zmq_recv_data(receiver)
    sender.send_multipart([b"D" + bytes(16) + b'[["x","|O",[1],"C"]]',
                           bytes(8)])
    with pytest.raises(pescador.DataError):
        pescador.zmq_recv_data(receiver)


def test_public_receiver_never_unpickles(pair, tmp_path):
    from pescador._zmq_wire import _error_frames
    from .zmq_helpers import Evil
    path = tmp_path / "pwned"
    sender, receiver = pair
    sender.send_multipart(_error_frames(Evil(str(path)), bytes(16)))
    with pytest.raises(pescador.PescadorError,
                       match="worker raised .*Evil") as info:
        pescador.zmq_recv_data(receiver)
    assert type(info.value) is pescador.PescadorError
    assert "Evil" in info.value.__cause__.traceback
    assert not path.exists()


def _fuzzed_messages():
    rng = np.random.RandomState(0)
    from pescador._zmq_wire import _encode
    good = [_encode({"x": np.arange(6.0).reshape(2, 3)}),
            _encode({"x": np.zeros((300, 300)), "y": np.int8(1)}),
            [b"D" + bytes(16) + b'[["x","<f8",[3],"C"]]', bytes(24)],
            [b"E" + bytes(16), b"", b"text", b"summary"]]
    for frames in good:
        frames = [bytes(frame) for frame in frames]
        for _ in range(60):
            mutated = list(frames)
            index = rng.randint(len(mutated))
            frame = bytearray(mutated[index])
            how = rng.randint(4)
            if how == 0 and frame:  # truncate
                frame = frame[:rng.randint(len(frame))]
            elif how == 1 and frame:  # flip bytes
                for at in rng.randint(len(frame), size=3):
                    frame[at] = rng.randint(256)
            elif how == 2:  # garbage
                frame = bytearray(rng.bytes(rng.randint(1, 40)))
            else:  # drop or add a frame
                if len(mutated) > 1 and rng.rand() < 0.5:
                    del mutated[index]
                    yield mutated
                    continue
                mutated.append(rng.bytes(8))
            mutated[index] = bytes(frame)
            yield mutated
    # Header fields of the wrong type or range.
    for body in [b'[["x","<f8",[-1],"C"]]', b'[["x","<f8",[1e30],"C"]]',
                 b'[["x","<f8",[99999999999999999999],"C"]]',
                 b'[["x",5,[1],"C"]]', b'[["x","<f8",3,"C"]]',
                 b'[["x","<f8",[1],"Z"]]', b'[["x","<f8",[1]]]', b'{}',
                 b'[["x","zz",[1],"C"]]', b'[["x",[["a","<i4"]],[1],"C"]]',
                 b'[["x","<f8",[[1]],"C"]]', b"\xff"]:
        yield [b"D" + bytes(16) + body, bytes(8)]
        yield [b"S" + bytes(16) + len(body).to_bytes(4, "little") + body
               + bytes(64)]


def test_wire_malformed_messages_raise_only_data_error(pair):
    sender, receiver = pair
    outcomes = set()
    for frames in _fuzzed_messages():
        sender.send_multipart(frames)
        try:
            pescador.zmq_recv_data(receiver)
            outcomes.add("ok")
        except pescador.DataError:
            outcomes.add("DataError")
        except pescador.PescadorError as exc:  # well-formed error message
            assert "worker raised" in str(exc)
            outcomes.add("error message")
    assert "DataError" in outcomes


def test_masked_array_is_refused_naming_its_key(pair):
    sender, _ = pair
    masked = np.ma.masked_array([1.0, 2.0], mask=[False, True])
    with pytest.raises(pescador.DataError, match="'m' holds a masked"):
        pescador.zmq_send_data(sender, {"ok": np.zeros(2), "m": masked})
    stream = ZMQStreamer(pescador.Streamer([{"m": masked}]))
    with pytest.raises(pescador.DataError, match="'m' holds a masked"):
        list(stream)


def test_memmap_is_sent_as_a_plain_array(pair, tmp_path):
    sender, receiver = pair
    mapped = np.memmap(str(tmp_path / "map"), dtype="<f4", mode="w+",
                       shape=(100, 300))
    mapped[:] = np.arange(300, dtype="<f4")
    for value in (mapped, mapped[:3]):
        pescador.zmq_send_data(sender, {"m": value})
        got = pescador.zmq_recv_data(receiver)["m"]
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, value)
    received = list(ZMQStreamer(pescador.Streamer([{"m": mapped}])))
    assert len(received) == 1
    np.testing.assert_array_equal(received[0]["m"], mapped)


# -- ZMQStreamer behaviour ------------------------------------------------

def test_round_trip_across_processes():
    items = [{key: array} for key, array in ARRAYS.items()]
    items.append({"big": np.arange(1 << 17, dtype=">f8"),
                  "small": np.float16(2.5), "grid": np.ones((3, 5), "c8")})
    received = list(ZMQStreamer(pescador.Streamer(items)))
    assert len(received) == len(items)
    for got, sent in zip(received, items):
        assert_same_item(got, {k: np.asarray(v) for k, v in sent.items()})


def test_round_trip_of_alternating_large_layouts():
    layouts = [((300, 100), "<f4", "C"), ((100, 300), ">f8", "F"),
               ((70000,), "u1", "C")]
    items = [{"x": np.asarray(np.random.RandomState(i).rand(*shape) * 100,
                              dtype=dtype, order=order), "i": np.int64(i)}
             for i, (shape, dtype, order) in enumerate(layouts * 4)]
    received = list(ZMQStreamer(pescador.Streamer(items)))
    assert len(received) == len(items)
    for got, sent in zip(received, items):
        assert_same_item(got, {k: np.asarray(v) for k, v in sent.items()})


@pytest.mark.parametrize("copy_", [True, False])
@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_transports_and_copy_modes(transport, copy_):
    stream = ZMQStreamer(pescador.Streamer(streams.arrays, 5, (70, 300)),
                         copy=copy_, transport=transport)
    expected = list(streams.arrays(5, (70, 300)))
    received = list(stream)
    assert len(received) == len(expected) == 5
    for got, sent in zip(received, expected):
        assert_same_item(got, sent)


def test_max_iter_cycle_call_and_repeated_iteration():
    stream = ZMQStreamer(pescador.Streamer(streams.arrays, 3))
    labels = [int(item["Y"]) for item in stream.iterate(max_iter=2)]
    assert labels == [0, 1]
    assert [int(item["Y"]) for item in stream.iterate()] == [0, 1, 2]
    assert [int(item["Y"]) for item in stream.iterate()] == [0, 1, 2]
    assert [int(item["Y"]) for item in stream.cycle(max_iter=7)] == \
        [0, 1, 2, 0, 1, 2, 0]
    assert [int(item["Y"]) for item in stream(max_iter=4, cycle=True)] == \
        [0, 1, 2, 0]
    assert list(stream.iterate(max_iter=0)) == []
    assert len(list(stream())) == 3
    assert stream.active == 0


def test_concurrent_iterations_are_independent():
    stream = ZMQStreamer(pescador.Streamer(streams.arrays, 4))
    first, second = stream.iterate(), stream.iterate()
    pairs = [(int(a["Y"]), int(b["Y"])) for a, b in zip(first, second)]
    assert pairs == [(i, i) for i in range(4)]
    assert list(first) == [] and list(second) == []


def test_empty_stream():
    assert list(ZMQStreamer(pescador.Streamer(streams.empty))) == []
    assert list(ZMQStreamer(pescador.Streamer(streams.empty)).cycle()) == []


def test_accepts_non_streamer_sources():
    items = [{"x": np.arange(i)} for i in range(3)]
    assert [len(item["x"]) for item in ZMQStreamer(items)] == [0, 1, 2]


def test_mux_inside():
    mux = pescador.StochasticMux(
        [pescador.Streamer(streams.arrays, 6, (2,), "float32", seed)
         for seed in range(4)],
        n_active=2, rate=2, mode="exhaustive", random_state=7)
    expected = list(copy.deepcopy(mux))
    received = list(ZMQStreamer(mux))
    assert len(received) == len(expected) > 4
    for got, sent in zip(received, expected):
        assert_same_item(got, sent)


def test_buffer_stream_inside():
    batches = pescador.Streamer(pescador.buffer_stream,
                                pescador.Streamer(streams.arrays, 10), 4)
    received = list(ZMQStreamer(batches))
    expected = list(batches)
    assert [b["X"].shape for b in received] == [(4, 3), (4, 3)]
    assert len(expected) == len(received)
    for got, sent in zip(received, expected):
        assert_same_item(got, sent)


def test_pickles_and_deep_copies():
    import pickle
    stream = ZMQStreamer(pescador.Streamer(streams.arrays, 2), timeout=1,
                         hwm=3, transport="tcp")
    for clone in (pickle.loads(pickle.dumps(stream)), copy.deepcopy(stream)):
        assert (clone.timeout, clone.hwm, clone.transport) == (1, 3, "tcp")
        assert len(list(clone)) == 2


@pytest.mark.parametrize("kwargs", [
    {"min_port": 0}, {"min_port": 100, "max_port": 99},
    {"max_port": 70000}, {"max_tries": 0}, {"timeout": -1},
    {"timeout": "5"}, {"hwm": 0}, {"hwm": 2.5}, {"transport": "udp"},
    {"start_method": "thread"},
    # Values the underlying calls cannot take (they failed when iterating).
    {"timeout": float("inf")}, {"timeout": 1e9}, {"timeout": float("nan")},
    {"hwm": 2 ** 31},
])
def test_invalid_parameters(kwargs):
    with pytest.raises(pescador.PescadorError, match="|".join(kwargs)):
        ZMQStreamer(pescador.Streamer(streams.arrays, 1), **kwargs)


def test_largest_parameters_work():
    stream = ZMQStreamer(pescador.Streamer(streams.arrays, 3),
                         timeout=10 ** 6, hwm=2 ** 31 - 1)
    assert len(list(stream)) == 3


def _free_port():
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_equal_min_and_max_port_bind_that_port():
    port = _free_port()
    stream = ZMQStreamer(pescador.Streamer(streams.arrays, 3),
                         transport="tcp", min_port=port, max_port=port,
                         max_tries=5)
    items = stream.iterate()
    next(items)
    from .test_zmq_faults import _listening_tcp_addresses
    assert _listening_tcp_addresses() == [("0100007F", port)]
    assert len(list(items)) == 2


def test_a_taken_port_is_a_clear_error():
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stream = ZMQStreamer(pescador.Streamer(streams.arrays, 3),
                             transport="tcp", min_port=port, max_port=port)
        with pytest.raises(pescador.PescadorError,
                           match=r"\[{0}, {0}\] .* in 1 tries".format(port)):
            list(stream)


def test_invalid_streamer():
    with pytest.raises(pescador.PescadorError):
        ZMQStreamer(42)
