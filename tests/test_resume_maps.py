"""Checkpoint and resume of the maps (issue 14): buffer_stream, tuples,
keras_tuples and cache, over seeded muxes, lists and other maps.

The resumed iterations run in a fresh subprocess (one for the whole
matrix), which rebuilds each stream from tests/resume_maps_streams.py and
continues from the state after a JSON round trip.
"""

import base64
import json
import os
import pickle
import subprocess
import sys
from itertools import islice

import numpy as np
import pytest

import pescador
from pescador import PescadorError, Streamer
from pescador.maps import buffer_stream, cache, keras_tuples, tuples

from . import resume_maps_streams as rs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCH = 14      # items per iteration (max_iter)
TAKEN = 5       # items taken before the checkpoint

MUXES = ["stochastic", "stochastic_replace", "shuffled", "chain", "list"]
ENDLESS = ["stochastic_replace", "shuffled"]
CASES = [(name, mux) for name in rs.MAPS for mux in MUXES]
# Checkpoints: in the first iteration of the stream, in its second (after
# one whole iteration), and in the second pass of a cycle (far into the
# first, for an endless mux).
WHERE = ["first", "second", "cycle"]


def assert_same(got, expected):
    """Equal items: dicts, tuples and lists compared element by element
    (lengths first), arrays by dtype, shape and values."""
    assert type(got) is type(expected), (got, expected)
    if isinstance(expected, dict):
        assert list(got) == list(expected)
        for key in expected:
            assert_same(got[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_same(g, e)
    elif isinstance(expected, (np.ndarray, np.generic)):
        assert got.dtype == expected.dtype
        assert np.shape(got) == np.shape(expected)
        np.testing.assert_array_equal(got, expected)
    else:
        assert got == expected


def checkpoint(name, mux, where):
    """(job for the subprocess, expected outputs): the state after TAKEN
    items of the iteration ``where``, and what the uninterrupted run
    yields from there on (the rest, then the next iteration)."""
    stream = rs.build(name, mux)
    if where == "cycle":
        taken = 2 * EPOCH
        if mux not in ENDLESS:
            taken = len(list(rs.build(name, mux).iterate())) + TAKEN
        reference = list(stream.cycle(max_iter=taken + EPOCH))
        expected = [reference[taken:]]
        job = dict(call="cycle", max_iter=taken + EPOCH, epochs=0)
    else:
        epochs = [list(stream.iterate(max_iter=EPOCH)) for _ in range(3)]
        skip = where == "second"
        expected = [epochs[skip][TAKEN:], epochs[skip + 1]]
        job = dict(call="iterate", max_iter=EPOCH, epochs=1)
        taken = TAKEN
    stream = rs.build(name, mux)
    if where == "second":
        list(stream.iterate(max_iter=EPOCH))
    items = getattr(stream, job["call"])(max_iter=job["max_iter"])
    head = list(islice(items, taken))
    state = json.loads(json.dumps(pescador.get_state(items)))
    job.update(map=name, mux=mux, state=state)
    assert len(head) == taken
    if where == "cycle":
        assert_same(head, reference[:taken])
    return job, expected


def run_fresh(jobs):
    """Run ``jobs`` in a fresh Python process; return their outputs."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "tests.resume_maps_streams"], cwd=ROOT,
        env=env, input=json.dumps(jobs), capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 0, done.stderr
    return pickle.loads(base64.b64decode(done.stdout))


@pytest.fixture(scope="module")
def resumed():
    """The matrix of cases, resumed in one fresh subprocess: a dict from
    (map, mux, where) to (got, expected)."""
    keys, jobs, expected = [], [], []
    for name, mux in CASES:
        for where in WHERE:
            job, exp = checkpoint(name, mux, where)
            keys.append((name, mux, where))
            jobs.append(job)
            expected.append(exp)
    outputs = run_fresh(jobs)
    assert len(outputs) == len(jobs)
    return dict(zip(keys, zip(outputs, expected)))


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("name, mux", CASES)
def test_resume_in_fresh_process_is_exact(resumed, name, mux, where):
    got, expected = resumed[name, mux, where]
    assert_same(got, expected)
    assert sum(map(len, expected)) > 0


def test_matrix_has_work_after_checkpoint():
    # The uninterrupted run yields items after the checkpoint in each
    # iteration of every case (else a comparison would be vacuous).
    for name, mux in CASES:
        stream = rs.build(name, mux)
        for _ in range(3):
            assert len(list(stream.iterate(max_iter=EPOCH))) > TAKEN, (
                name, mux)


# -- what cannot be resumed, and states that do not fit ----------------------

def one_shot():
    return rs.numbered(0, 20)


MAP_CALLS = {
    "buffer_stream": (buffer_stream, (3,), {}),
    "tuples": (tuples, ("X",), {}),
    "keras_tuples": (keras_tuples, (), {"inputs": "X"}),
    "cache": (cache, (4, 0.5, 0), {}),
}


@pytest.mark.parametrize("name", list(MAP_CALLS))
def test_map_over_one_shot_iterator_cannot_checkpoint(name):
    func, args, kwargs = MAP_CALLS[name]
    for items in [func(one_shot(), *args, **kwargs),
                  Streamer(func, one_shot(), *args, **kwargs).iterate()]:
        next(items)
        with pytest.raises(PescadorError, match=(
                "Cannot checkpoint {} over a one-shot iterator \\(generator"
                "\\).*Give {} a Streamer instead").format(name, name)):
            pescador.get_state(items)
        assert len(list(items)) > 0     # the map itself still works


@pytest.mark.parametrize("name", list(MAP_CALLS))
def test_map_over_list_or_streamer_resumes(name):
    # In-process, with the bare map's state too (get_state of the map's
    # own generator).
    func, args, kwargs = MAP_CALLS[name]
    for source in [list(one_shot()), Streamer(rs.numbered, 0, 20)]:
        expected = list(func(source, *args, **kwargs))
        items = func(source, *args, **kwargs)
        head = list(islice(items, 3))
        state = json.loads(json.dumps(pescador.get_state(items)))
        rest = list(func._pescador_resume(state, source, *args, **kwargs))
        assert_same(head + rest, expected)


def state_of(stream, n=3):
    items = stream.iterate()
    list(islice(items, n))
    return json.loads(json.dumps(pescador.get_state(items)))


@pytest.mark.parametrize("other, match", [
    (lambda m: Streamer(buffer_stream, m, 5), "buffer_size= 4"),
    (lambda m: Streamer(buffer_stream, m, 4, True), "partial= False"),
    (lambda m: Streamer(buffer_stream, m, 4, axis=0), "axis= None"),
    (lambda m: Streamer(tuples, m, "X"), "the map 'buffer_stream'"),
    (lambda m: Streamer(cache, m, 4), "the map 'buffer_stream'"),
    (lambda m: Streamer(buffer_stream, list(one_shot()), 4),
     "the input of buffer_stream as 'a Streamer"),
])
def test_mismatched_buffer_state_is_rejected(other, match):
    state = state_of(Streamer(buffer_stream, rs.make_mux("shuffled"), 4))
    stream = other(rs.make_mux("shuffled"))
    with pytest.raises(PescadorError, match="does not fit the stream.*"
                       + match.replace("(", "\\(")):
        next(stream.iterate(state=state))


@pytest.mark.parametrize("other, match", [
    (lambda m: Streamer(cache, m, 6, 0.4, 3), "n_cache= 5"),
    (lambda m: Streamer(cache, m, 5, 0.5, 3), "prob= 0.4"),
    (lambda m: Streamer(cache, m, 5, 0.4), "seeded= True"),
    (lambda m: Streamer(tuples, m, "X"), "the map 'cache'"),
])
def test_mismatched_cache_state_is_rejected(other, match):
    state = state_of(rs.build("cache", "shuffled"), 20)
    stream = other(rs.make_mux("shuffled"))
    with pytest.raises(PescadorError, match="does not fit the stream.*"
                       + match):
        next(stream.iterate(state=state))


def test_mismatched_tuples_keys_are_rejected():
    state = state_of(rs.build("keras", "chain"))
    with pytest.raises(PescadorError, match="inputs= \\['X'\\]"):
        next(Streamer(keras_tuples, rs.make_mux("chain"), "X", "Y").iterate(
            state=state))
    state = state_of(rs.build("tuples", "chain"))
    with pytest.raises(PescadorError, match="keys= \\['X', 'Y'\\]"):
        next(Streamer(tuples, rs.make_mux("chain"), "Y", "X").iterate(
            state=state))


@pytest.mark.parametrize("slots, match", [
    ([0, 1, 1, 2, 3], "distinct"),
    ([0, 1, -1, 2, 3], "distinct"),
    ([0, 1, 2, 3, 4, 5], "at most n_cache=5"),
    ([0, 2], "still filling"),
    ("0123", "distinct"),
])
def test_corrupt_cache_state_is_rejected(slots, match):
    state = state_of(rs.build("cache", "chain"), 20)
    state["stream"]["inner"]["slots"] = slots
    with pytest.raises(PescadorError, match=match):
        next(rs.build("cache", "chain").iterate(state=state))


def test_cache_state_past_the_input_is_rejected():
    state = state_of(rs.build("cache", "chain"), 20)
    state["stream"]["inner"]["slots"][0] = 10 ** 6
    with pytest.raises(PescadorError, match="ended before item 1000000"):
        next(rs.build("cache", "chain").iterate(state=state))


# -- what resuming costs, and what it restores without a seed -----------------

def produced_by(func):
    rs.PRODUCED[0] = 0
    func()
    return rs.PRODUCED[0]


def resume_cost(name, taken):
    """(items the generators produced before a checkpoint after ``taken``
    items, and for one more item; and while resuming, up to that item)."""
    items = rs.build(name, "chain").iterate()
    before = produced_by(lambda: list(islice(items, taken)))
    state = json.loads(json.dumps(pescador.get_state(items)))
    step = produced_by(lambda: next(items))
    resumed = rs.build(name, "chain").iterate(state=state)
    return before, step, produced_by(lambda: next(resumed))


def test_cache_resume_reruns_its_input_from_its_start():
    # As documented: resuming a cache re-runs its input from the start of
    # the input's iteration up to the checkpoint, exactly the items the
    # input produced before it.
    before, step, cost = resume_cost("cache", 30)
    assert before > 15
    assert cost == before + step


def test_buffer_resume_does_not_rerun_its_input():
    # buffer_stream resumes its input from its state: a ChainMux re-runs
    # only the open streamer's items (at most 13 here), not all 36 before.
    before, step, cost = resume_cost("buffer", 9)
    assert before == 36 and step == 4
    assert cost <= 13 + step


def test_unseeded_cache_restores_its_contents():
    # Without a seed the draws after the checkpoint come from numpy's
    # global state, but the cached items and the input's position are
    # restored: every item after resume is a cached one or the next fresh
    # one, in the input's order. (The global state is seeded, and put back
    # afterwards, so that the test is deterministic: RandomState's stream
    # is stable across numpy versions.)
    saved = np.random.get_state()
    np.random.seed(1)
    try:
        check_unseeded_cache()
    finally:
        np.random.set_state(saved)


def check_unseeded_cache():
    stream = Streamer(cache, Streamer(rs.numbered, 0, 400), 6, 0.5)
    items = stream.iterate()
    head = [int(x["Y"]) for x in islice(items, 50)]
    state = json.loads(json.dumps(pescador.get_state(items)))
    cached = {head[i] for i in range(len(head))
              if head[i] in state["stream"]["inner"]["slots"]}
    assert set(state["stream"]["inner"]["slots"]) == cached
    fresh = max(head) + 1
    rest = [int(x["Y"]) for x in Streamer(
        cache, Streamer(rs.numbered, 0, 400), 6, 0.5).iterate(state=state)]
    for y in rest:
        if y == fresh:
            fresh += 1
        else:
            assert y < fresh
    assert fresh == 400
    assert set(rest[:200]) & cached     # repeats of the restored cache


@pytest.mark.parametrize("random_state", [4, "generator"])
def test_cache_resumes_across_blocks_of_draws_and_twice(random_state):
    # Hundreds of steps (blocks of 256 draws), checkpoints before and
    # after the first block boundary, and a checkpoint of a resumed run.
    def stream():
        rng = (np.random.default_rng(4) if random_state == "generator"
               else random_state)
        return Streamer(cache, Streamer(rs.numbered, 0, 700), 8, 0.3, rng)

    expected = [int(x["Y"]) for x in stream().iterate()]
    assert len(expected) > 3 * 256
    for first, second in [(100, 300), (600, 200), (256, 256)]:
        items = stream().iterate()
        head = [int(x["Y"]) for x in islice(items, first)]
        state = json.loads(json.dumps(pescador.get_state(items)))
        resumed = stream().iterate(state=state)
        middle = [int(x["Y"]) for x in islice(resumed, second)]
        state = json.loads(json.dumps(pescador.get_state(resumed)))
        rest = [int(x["Y"]) for x in stream().iterate(state=state)]
        assert head + middle + rest == expected


def test_long_cache_resumes_from_a_later_origin():
    # Far into a long iteration, the cache's origin has moved forward (once
    # per 8192 items pulled, to a position at or before its oldest item):
    # resuming re-runs the input from there, not from its start, exactly.
    def stream():
        return Streamer(cache, rs.make_mux("shuffled"), 4, 0.5, 6)

    expected = [int(x["Y"]) for x in stream().iterate(max_iter=40500)]
    items = stream().iterate()
    before = produced_by(lambda: list(islice(items, 40000)))
    state = json.loads(json.dumps(pescador.get_state(items)))
    origin = state["stream"]["inner"]["origin"]
    assert set(origin) == {"input", "position"}
    assert origin["position"] >= 8192
    assert min(state["stream"]["inner"]["slots"]) >= origin["position"]
    resumed = stream().iterate(state=state)
    cost = produced_by(lambda: next(resumed))
    # The items since the origin, one more step, and what resuming the
    # mux at the origin re-runs (at most its 5 open activations, <= 13
    # items each).
    assert cost <= before - origin["position"] + 1 + 5 * 13
    assert cost < before * 0.6
    rest = [int(x["Y"]) for x in islice(resumed, 499)]
    assert len(rest) == 499
    assert [int(x["Y"]) for x in islice(stream().iterate(), 40001)][-1] == (
        expected[40000])
    assert rest == expected[40001:]


def mux_of_maps():
    return pescador.ChainMux([
        Streamer(tuples, rs.make_mux("stochastic"), "Y"),
        Streamer(tuples, rs.make_mux("chain"), "Y")])


@pytest.mark.parametrize("second", [
    False,
    True,
])
def test_mux_of_maps_resumes(second):
    stream = mux_of_maps()
    expected = [list(stream.iterate(max_iter=60)) for _ in range(2)][second]
    stream = mux_of_maps()
    if second:
        list(stream.iterate(max_iter=60))
    items = stream.iterate(max_iter=60)
    head = list(islice(items, 10))
    state = json.loads(json.dumps(pescador.get_state(items)))
    rest = list(mux_of_maps().iterate(max_iter=60, state=state))
    assert_same(head + rest, expected)


def test_checkpoint_before_the_first_item_of_a_later_iteration():
    stream = rs.build("buffer", "shuffled")
    expected = [list(stream.iterate(max_iter=EPOCH)) for _ in range(2)][1]
    stream = rs.build("buffer", "shuffled")
    list(stream.iterate(max_iter=EPOCH))
    items = stream.iterate(max_iter=EPOCH)
    state = json.loads(json.dumps(pescador.get_state(items)))
    assert_same(list(rs.build("buffer", "shuffled").iterate(
        max_iter=EPOCH, state=state)), expected)
