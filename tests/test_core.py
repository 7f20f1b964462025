"""Tests for pescador.core: Streamer and streamable."""

import copy
import functools
import pickle

import numpy as np
import pytest

import pescador
from pescador.core import Streamer, streamable

from .streams import constant, count, empty, fail_after


@streamable
def decorated_count(n):
    """Count to n."""
    yield from range(n)


# -- construction ----------------------------------------------------------

@pytest.mark.parametrize("source, expected", [
    ([1, 2, 3], [1, 2, 3]),
    ((4, 5), [4, 5]),
    ("ab", ["a", "b"]),
    (range(3), [0, 1, 2]),
    ({"k": 1}, ["k"]),
])
def test_iterable_sources(source, expected):
    stream = Streamer(source)
    assert list(stream) == expected
    # Restartable: a second pass gives the same items.
    assert list(stream) == expected


def test_generator_function_with_args_and_kwargs():
    stream = Streamer(count, 3, start=10)
    assert stream.streamer is count
    assert stream.args == (3,)
    assert stream.kwargs == {"start": 10}
    assert list(stream) == [10, 11, 12]
    assert list(stream) == [10, 11, 12]


def test_partial_of_generator_function():
    stream = Streamer(functools.partial(count, 2, start=5))
    assert list(stream) == [5, 6]


def test_streamer_of_streamer():
    inner = Streamer(count, 4)
    outer = Streamer(inner)
    assert list(outer) == [0, 1, 2, 3]
    assert list(outer.iterate(max_iter=2)) == [0, 1]
    assert list(outer.cycle(max_iter=6)) == [0, 1, 2, 3, 0, 1]


def test_iterator_source_is_one_shot():
    stream = Streamer(count(3))
    assert list(stream) == [0, 1, 2]
    assert list(stream) == []


def test_iterator_source_resumes_where_it_stopped():
    stream = Streamer(iter(range(5)))
    assert list(stream.iterate(max_iter=2)) == [0, 1]
    assert list(stream) == [2, 3, 4]


@pytest.mark.parametrize("bad", [42, 3.5, None, object()])
def test_non_iterable_raises(bad):
    with pytest.raises(pescador.PescadorError, match="generator function"):
        Streamer(bad)


def test_plain_function_raises():
    def not_a_generator(n):
        return list(range(n))

    with pytest.raises(pescador.PescadorError,
                       match="not_a_generator.*not a generator function"):
        Streamer(not_a_generator, 3)


# -- iterate, cycle, __call__ ---------------------------------------------

def test_finite_stream_with_and_without_max_iter():
    stream = Streamer(count, 5)
    assert list(stream.iterate()) == [0, 1, 2, 3, 4]
    assert list(stream.iterate(max_iter=3)) == [0, 1, 2]
    assert list(stream.iterate(max_iter=10)) == [0, 1, 2, 3, 4]
    assert list(stream.iterate(max_iter=0)) == []


def test_infinite_stream_with_max_iter():
    stream = Streamer(constant, "x")
    assert list(stream.iterate(max_iter=4)) == ["x"] * 4
    assert list(stream(max_iter=7)) == ["x"] * 7


def test_cycle_restarts_and_stops_at_exactly_max_iter():
    stream = Streamer(count, 3)
    assert list(stream.cycle(max_iter=8)) == [0, 1, 2, 0, 1, 2, 0, 1]
    assert list(stream(max_iter=4, cycle=True)) == [0, 1, 2, 0]
    assert list(stream.cycle(max_iter=0)) == []


def test_cycle_without_max_iter_is_infinite():
    stream = Streamer(count, 2)
    gen = stream.cycle()
    assert [next(gen) for _ in range(101)] == [0, 1] * 50 + [0]
    gen.close()
    assert stream.active == 0


def test_cycle_of_empty_stream_ends_instead_of_hanging():
    assert list(Streamer(empty).cycle()) == []
    assert list(Streamer([]).cycle(max_iter=10)) == []


def test_cycle_of_one_shot_iterator_ends_after_one_pass():
    assert list(Streamer(iter("ab")).cycle()) == ["a", "b"]


def test_call_dispatches():
    stream = Streamer(count, 3)
    assert list(stream()) == [0, 1, 2]
    assert list(stream(2)) == [0, 1]
    assert list(stream(cycle=True, max_iter=5)) == [0, 1, 2, 0, 1]


@pytest.mark.parametrize("bad", [-1, 2.5, "3", True, [1]])
@pytest.mark.parametrize("method", ["iterate", "cycle", "__call__"])
def test_bad_max_iter_raises_eagerly(bad, method):
    stream = Streamer(count, 3)
    with pytest.raises(pescador.PescadorError, match="max_iter"):
        getattr(stream, method)(max_iter=bad)


def test_numpy_int_max_iter_accepted():
    assert list(Streamer(count, 5).iterate(np.int64(2))) == [0, 1]


def test_concurrent_iterations_do_not_share_state():
    stream = Streamer(count, 4)
    first, second = stream.iterate(), stream.iterate()
    assert next(first) == 0
    assert next(first) == 1
    assert next(second) == 0
    assert list(first) == [2, 3]
    assert list(second) == [1, 2, 3]


def test_zip_of_one_streamer_with_itself():
    stream = Streamer(count, 3)
    assert list(zip(stream, stream)) == [(0, 0), (1, 1), (2, 2)]


def test_exception_in_generator_propagates_unchanged():
    stream = Streamer(fail_after, 2, KeyError, "missing")
    seen = []
    with pytest.raises(KeyError, match="missing") as info:
        for item in stream:
            seen.append(item)
    assert seen == [0, 1]
    # The traceback reaches into the user's generator.
    assert any(entry.name == "fail_after" for entry in info.traceback)
    assert stream.active == 0


# -- activation --------------------------------------------------------------

def test_activation_returns_independent_copy():
    stream = Streamer(count, 3)
    assert not stream.is_activated_copy
    assert stream.active == 0
    with stream as active:
        assert active is not stream
        assert active.is_activated_copy
        assert not stream.is_activated_copy
        assert stream.active == 1
        with stream as other:
            assert other is not active
            assert stream.active == 2
        assert stream.active == 1
        assert active.active == 0
    assert stream.active == 0


def test_stream_and_active_count_are_the_2_0_attributes():
    stream = Streamer(count, 3)
    assert stream.stream_ is None and stream.active_count_ == 0
    with stream as active:
        # the live iterator of this activation: iterating it runs it
        assert active.stream_ is not None
        assert next(active.stream_) == 0
        assert list(active.stream_) == [1, 2]
        assert stream.active_count_ == stream.active == 1
        assert stream.stream_ is None
        with stream as other:
            assert other.stream_ is not active.stream_
            assert stream.active_count_ == 2
        # copies of an idle Streamer keep the count (0); of a live one,
        # copies are idle
        for clone in (copy.copy(active), copy.deepcopy(active),
                      pickle.loads(pickle.dumps(Streamer(count, 2)))):
            assert clone.active_count_ == clone.active == 0
            assert clone.stream_ is None
    assert stream.active_count_ == 0
    for clone in (copy.copy(stream), copy.deepcopy(stream)):
        assert (clone.active_count_, clone.stream_) == (0, None)


def test_active_counts_during_iteration():
    stream = Streamer(count, 3)
    gen = stream.iterate()
    assert stream.active == 0  # lazy: nothing runs before the first item
    next(gen)
    assert stream.active == 1
    gen2 = stream.iterate()
    next(gen2)
    assert stream.active == 2
    list(gen)
    assert stream.active == 1
    gen2.close()
    assert stream.active == 0


def test_active_goes_down_on_break():
    stream = Streamer(constant, 1)
    for i, _ in enumerate(stream):
        assert stream.active == 1
        if i == 3:
            break
    assert stream.active == 0


def test_active_goes_down_with_cycle_and_max_iter():
    stream = Streamer(count, 2)
    assert len(list(stream.cycle(max_iter=5))) == 5
    assert stream.active == 0


def test_activated_copy_deep_copies_mutable_source():
    data = [[1], [2]]
    stream = Streamer(data)
    with stream as active:
        assert active.streamer == data
        assert active.streamer is not data
        assert active.streamer[0] is not data[0]


# -- copy and pickle ---------------------------------------------------------

def test_shallow_copy_shares_everything():
    data = [1, 2]
    stream = Streamer(count, 2, start=data)
    clone = copy.copy(stream)
    assert clone is not stream
    assert clone.streamer is stream.streamer
    assert clone.kwargs is stream.kwargs


def test_deepcopy_copies_streamer_and_kwargs_but_shares_args():
    shared_arg = [0]
    kwarg = {"a": [1]}
    stream = Streamer(count, shared_arg, start=kwarg)
    clone = copy.deepcopy(stream)
    assert clone.args is stream.args
    assert clone.kwargs == stream.kwargs
    assert clone.kwargs is not stream.kwargs
    assert clone.kwargs["start"] is not kwarg

    listed = Streamer([[1, 2]])
    clone = copy.deepcopy(listed)
    assert clone.streamer == listed.streamer
    assert clone.streamer is not listed.streamer
    assert clone.streamer[0] is not listed.streamer[0]


def test_deepcopy_of_iterator_source_shares_the_iterator():
    iterator = iter([1, 2])
    clone = copy.deepcopy(Streamer(iterator))
    assert clone.streamer is iterator


def test_deepcopy_resets_activation_state():
    stream = Streamer(count, 3)
    with stream as active:
        clone = copy.deepcopy(stream)
        assert clone.active == 0
        assert not copy.deepcopy(active).is_activated_copy


@pytest.mark.parametrize("stream", [
    Streamer(count, 3, start=2),
    Streamer([1, 2, 3]),
    Streamer(Streamer("abc")),
    decorated_count(3),
], ids=["genfunc", "list", "nested", "streamable"])
def test_pickle_round_trip(stream):
    clone = pickle.loads(pickle.dumps(stream))
    assert type(clone) is Streamer
    assert list(clone) == list(stream)
    assert clone.args == stream.args
    assert clone.kwargs == stream.kwargs


def test_pickle_while_active():
    stream = Streamer(count, 3)
    gen = stream.iterate()
    next(gen)
    clone = pickle.loads(pickle.dumps(stream))
    assert clone.active == 0
    assert list(clone) == [0, 1, 2]
    gen.close()


# -- streamable ---------------------------------------------------------------

def test_streamable_returns_streamer_and_keeps_metadata():
    stream = decorated_count(4)
    assert isinstance(stream, Streamer)
    assert stream.args == (4,)
    assert list(stream) == [0, 1, 2, 3]
    assert decorated_count.__name__ == "decorated_count"
    assert decorated_count.__doc__ == "Count to n."
    assert decorated_count.__wrapped__ is stream.streamer


def test_streamer_of_streamable_function_unwraps_it():
    assert list(Streamer(decorated_count, 2)) == [0, 1]


def test_streamable_rejects_plain_function():
    with pytest.raises(pescador.PescadorError, match="generator function"):
        @streamable
        def plain(n):
            return n


def test_repr():
    assert repr(Streamer(count, 3, start=1)) == "Streamer(count, 3, start=1)"


@pytest.mark.parametrize("method", ["iterate", "cycle"])
def test_limited_iteration_ends_activation_with_its_last_item(method):
    stream = Streamer(count, 5)
    limited = getattr(stream, method)(max_iter=3)
    assert [next(limited), next(limited), next(limited)] == [0, 1, 2]
    # The limit is reached: the activation ends while `limited` is held.
    assert list(limited) == []
    assert stream.active == 0


@pytest.mark.parametrize("method", ["iterate", "cycle"])
def test_limited_iteration_closes_like_a_generator(method):
    stream = Streamer(count, 5)
    limited = getattr(stream, method)(max_iter=4)
    assert next(limited) == 0
    assert stream.active == 1
    limited.close()
    assert stream.active == 0
    assert list(limited) == []
    limited.close()  # closing twice is harmless, as for a generator
