"""Checkpoint and resume of Streamers and muxes: `pescador.get_state` and
``state=`` (the maps and ZMQStreamer have their own test files)."""

import copy
import json
import os
import pickle
import subprocess
import sys
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

import pescador
from pescador import (ChainMux, PescadorError, ShuffledMux,
                      StochasticMux, Streamer)
from tests import resume_streams
from tests.resume_streams import PRODUCED, S, STREAMS, build

ROOT = Path(__file__).resolve().parent.parent
CUTS = [0, 1, 2, 5, 13, 34, 89, 90]
EPOCH_ITEMS = 40


def calls(name):
    """The iterations to checkpoint for a stream: every finite stream is
    also iterated to its end."""
    result = [("iterate", {"max_iter": 90}), ("cycle", {"max_iter": 150})]
    if STREAMS[name][1]:
        result.append(("iterate", {}))
    return result


def reference(name, call, kwargs):
    """The uninterrupted run and the epoch after it, in this process."""
    stream = build(name)
    items = list(getattr(stream, call)(**kwargs))
    return items, list(stream.iterate(max_iter=EPOCH_ITEMS))


def checkpoint(name, call, kwargs, cut):
    """The first ``cut`` items and the state after them, through JSON."""
    iteration = getattr(build(name), call)(**kwargs)
    head = list(islice(iteration, cut))
    return head, json.loads(json.dumps(pescador.get_state(iteration)))


def resume_in_subprocess(jobs):
    """Run the jobs (see `resume_streams.run`) in a fresh interpreter."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "tests.resume_streams"], cwd=str(ROOT),
        input=json.dumps(jobs), capture_output=True, text=True, env=env,
        timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    results = json.loads(done.stdout)
    assert len(results) == len(jobs)
    return results


def test_every_mux_and_mode_resumes_exactly_in_a_fresh_process():
    jobs, expected = [], []
    for name in STREAMS:
        for call, kwargs in calls(name):
            items, epoch = reference(name, call, kwargs)
            for cut in CUTS:
                if cut > len(items):
                    continue
                head, state = checkpoint(name, call, kwargs, cut)
                assert head == items[:cut]
                jobs.append(dict(name=name, call=call, kwargs=kwargs,
                                 state=state, epoch_items=EPOCH_ITEMS))
                expected.append((items[cut:], epoch))
    assert len(jobs) > 250
    results = resume_in_subprocess(jobs)
    for job, result, (rest, epoch) in zip(jobs, results, expected):
        where = (job["name"], job["call"], job["kwargs"])
        assert len(result["rest"]) == len(rest), where
        assert result["rest"] == rest, where
        # the epoch after the resumed one is the one that would have come
        assert result["epoch"] == epoch, where


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_resume_in_process_matches_and_counts_its_activation(name):
    call, kwargs = "iterate", {"max_iter": 90}
    items, epoch = reference(name, call, kwargs)
    head, state = checkpoint(name, call, kwargs, 21)
    stream = build(name)
    assert list(stream.iterate(state=state, **kwargs)) == items[21:]
    assert list(stream.iterate(max_iter=EPOCH_ITEMS)) == epoch
    assert stream.active == 0


def test_the_state_is_small_json_that_pickles():
    mux = StochasticMux([S(i, 1000) for i in range(100)], 10, rate=64,
                        random_state=0)
    iteration = mux.iterate()
    list(islice(iteration, 5000))
    state = pescador.get_state(iteration)
    text = json.dumps(state)
    assert json.loads(text) == state
    assert pickle.loads(pickle.dumps(state)) == state
    # The mux's own epoch generator (MT19937, 2.5 kB) dominates.
    assert len(text) < 8000


def test_state_before_the_first_item_and_after_the_last():
    stream = build("chain")
    items = list(stream)
    fresh = stream.iterate()
    state = json.loads(json.dumps(pescador.get_state(fresh)))
    assert list(build("chain").iterate(state=state)) == items
    ended = stream.iterate()
    assert list(ended) == items
    state = pescador.get_state(ended)
    assert state["done"] and state["taken"] == len(items)
    assert list(build("chain").iterate(state=state)) == []


def test_a_resumed_iteration_can_be_checkpointed_again():
    items, _ = reference("nested", "iterate", {"max_iter": 300})
    state = None
    got = []
    for cut in [17, 40, 3, 0, 90]:
        iteration = build("nested").iterate(max_iter=300, state=state)
        got += list(islice(iteration, cut))
        state = json.loads(json.dumps(pescador.get_state(iteration)))
    got += list(build("nested").iterate(max_iter=300, state=state))
    assert got == items


def test_resuming_a_chain_reruns_only_its_open_streamer():
    # 50 streamers of 100 items: a checkpoint at item 4321 is 21 items into
    # streamer 43. Resuming re-runs those 21 items (and the one resumed
    # on), never the 4300 before.
    def chain():
        return ChainMux([S(i, 100) for i in range(50)])
    iteration = chain().iterate()
    list(islice(iteration, 4321))
    state = pescador.get_state(iteration)
    PRODUCED[0] = 0
    resumed = chain().iterate(state=state)
    assert next(resumed) == [43, 21]
    assert PRODUCED[0] == 22
    assert len(list(resumed)) == 5000 - 4322


def test_resuming_a_stochastic_mux_reruns_only_its_open_activations():
    mux = StochasticMux([S(i, 10 ** 6) for i in range(20)], 4, rate=50,
                        random_state=0)
    iteration = mux.iterate()
    list(islice(iteration, 20000))
    state = pescador.get_state(iteration)
    pulled = sum(slot["pulled"] for slot in state["stream"]["slots"])
    PRODUCED[0] = 0
    resumed = StochasticMux([S(i, 10 ** 6) for i in range(20)], 4, rate=50,
                            random_state=0).iterate(state=state)
    next(resumed)
    # the open activations' items, and at most the one item taken since
    assert pulled <= PRODUCED[0] <= pulled + 1
    assert pulled < 4 * 400     # a few budgets, not the 20000 items


def test_an_unseeded_mux_continues_its_schedule():
    # One slot with a constant budget of 10: whatever the global generator
    # draws, the items after the checkpoint finish the open activation.
    def mux():
        return StochasticMux([S(i, 1000) for i in range(5)], 1, rate=10,
                             dist="constant")
    iteration = mux().iterate()
    head = list(islice(iteration, 14))
    state = json.loads(json.dumps(pescador.get_state(iteration)))
    rest = list(mux().iterate(max_iter=6, state=None))
    assert len(rest) == 6
    resumed = list(islice(mux().iterate(state=state), 6))
    tag, i = head[-1]
    assert resumed == [[tag, i + 1 + k] for k in range(6)]


def test_a_cycle_resumes_across_its_restarts():
    stream = S("c", 7)
    items = list(stream.cycle(max_iter=30))
    for cut in range(31):
        iteration = stream.cycle(max_iter=30)
        head = list(islice(iteration, cut))
        state = json.loads(json.dumps(pescador.get_state(iteration)))
        assert head + list(S("c", 7).cycle(max_iter=30, state=state)) \
            == items


def test_call_takes_the_state_too():
    mux = build("shuffled")
    iteration = mux(max_iter=50, cycle=True)
    head = list(islice(iteration, 20))
    state = pescador.get_state(iteration)
    assert head + list(build("shuffled")(max_iter=50, cycle=True,
                                         state=state)) == \
        list(build("shuffled")(max_iter=50, cycle=True))


def test_streamable_and_deep_copies_resume():
    @pescador.streamable
    def letters(word):
        yield from word
    iteration = letters("checkpoint").iterate()
    list(islice(iteration, 4))
    state = pescador.get_state(iteration)
    assert "".join(letters("checkpoint").iterate(state=state)) == "kpoint"
    mux = build("stochastic")
    twin = copy.deepcopy(mux)
    iteration = mux.iterate(max_iter=60)
    head = list(islice(iteration, 30))
    assert head + list(twin.iterate(max_iter=60, state=pescador.get_state(
        iteration))) == list(build("stochastic").iterate(max_iter=60))


# -- what does not fit -------------------------------------------------------

def state_of(stream, cut=10, **kwargs):
    iteration = stream.iterate(**kwargs)
    list(islice(iteration, cut))
    return json.loads(json.dumps(pescador.get_state(iteration)))


@pytest.mark.parametrize("other, message", [
    (lambda: ShuffledMux([S(i, 50) for i in range(6)], random_state=1),
     "type"),
    (lambda: StochasticMux([S(i, 50) for i in range(7)], 3, rate=4,
                           random_state=1), "streamers"),
    (lambda: StochasticMux([S(i, 50) for i in range(6)], 2, rate=4,
                           random_state=1), "n_active"),
    (lambda: StochasticMux([S(i, 5) for i in range(6)], 3, rate=4,
                           random_state=1), "ended"),
    (lambda: Streamer(range(100)), "type"),
    (lambda: StochasticMux([ShuffledMux([S(i, 50)]) for i in range(6)], 3,
                           rate=4, random_state=1), "ShuffledMux"),
])
def test_a_state_of_another_stream_is_refused(other, message):
    state = state_of(build("stochastic"), cut=60, max_iter=90)
    with pytest.raises(PescadorError, match=message):
        list(other().iterate(max_iter=90, state=state))


def test_a_state_of_another_call_or_limit_is_refused():
    state = state_of(build("stochastic"), max_iter=90)
    with pytest.raises(PescadorError, match="max_iter"):
        build("stochastic").iterate(max_iter=80, state=state)
    with pytest.raises(PescadorError, match="cycle"):
        build("stochastic").cycle(max_iter=90, state=state)


@pytest.mark.parametrize("bad", [
    None.__class__, 3, "state", [], {}, {"pescador_state": 1},
])
def test_malformed_states_are_refused(bad):
    if bad is None.__class__:
        bad = dict(state_of(build("chain")), pescador_state=99)
        match = "version"
    else:
        match = "Invalid state"
    with pytest.raises(PescadorError, match=match):
        build("chain").iterate(state=bad)


def test_get_state_of_something_else_is_refused():
    for thing in [iter([1, 2]), [1, 2], (x for x in "ab"), None,
                  Streamer("ab")]:
        with pytest.raises(PescadorError, match="get_state expects"):
            pescador.get_state(thing)


def test_a_chain_over_a_one_shot_iterator_cannot_resume():
    def one_shot():
        return ChainMux(iter([S(i, 5) for i in range(3)]))
    state = state_of(one_shot(), cut=7)
    with pytest.raises(PescadorError, match="one-shot iterator"):
        list(one_shot().iterate(state=state))


def test_a_resumed_early_stop_closes_every_activation():
    streams = [S(i, 50) for i in range(6)]
    mux = StochasticMux(streams, 3, rate=4, random_state=1)
    state = state_of(build("stochastic"), cut=25)
    iteration = mux.iterate(state=state)
    list(islice(iteration, 5))
    assert sum(s.active for s in streams) == 3
    iteration.close()
    assert sum(s.active for s in streams) == 0 and mux.active == 0


def test_draws_are_exact_with_any_seed_type():
    # An int, a RandomState and a Generator as random_state all resume
    # exactly (the matrix covers them); the activation's own generator is
    # PCG64 whatever the seed's type.
    mux = build("stochastic_generator")
    iteration = mux.iterate()
    list(islice(iteration, 3))
    state = pescador.get_state(iteration)
    assert state["stream"]["rng"]["bit_generator"] == "PCG64"
    assert isinstance(mux.rng, np.random.Generator)


def test_resume_streams_module_runs_standalone():
    assert resume_streams.run(dict(
        name="chain", call="iterate", kwargs={}, state=state_of(
            build("chain"), cut=3), epoch_items=2))["rest"][0] == [1, 0]


def test_a_mux_without_the_checkpoint_hooks_says_so():
    class Alternate(pescador.BaseMux):
        def _start(self):
            self._init_slots(len(self.streamers))
            for k, streamer in enumerate(self.streamers):
                self._open(k, streamer)

        def _schedule(self):
            return range(len(self.streamers)) if any(self._slots) else None

        def _on_dry(self, k):
            self._close(k)
            return False

    mux = Alternate(["abc", "xy"])
    assert "".join(mux) == "axbyc"
    iteration = mux.iterate()
    next(iteration)
    with pytest.raises(PescadorError, match="Alternate cannot be checkpointed"):
        pescador.get_state(iteration)


def test_the_state_after_max_iter_sets_up_the_next_epoch():
    # The usual loop: one epoch of max_iter items, then a checkpoint.
    items, epoch = reference("stochastic", "iterate", {"max_iter": 90})
    iteration = build("stochastic").iterate(max_iter=90)
    assert list(iteration) == items
    state = json.loads(json.dumps(pescador.get_state(iteration)))
    stream = build("stochastic")
    assert list(stream.iterate(max_iter=90, state=state)) == []
    assert list(stream.iterate(max_iter=EPOCH_ITEMS)) == epoch


def test_a_closed_iteration_has_no_state():
    iteration = build("stochastic").iterate(max_iter=90)
    list(islice(iteration, 10))
    iteration.close()
    with pytest.raises(PescadorError, match="closed before its end"):
        pescador.get_state(iteration)


def test_a_state_before_the_first_item_of_a_later_epoch():
    # Epoch 1 has run; the state of epoch 2, taken before its first item,
    # resumes epoch 2 (the mux's own generators are in it), not epoch 1.
    stream = build("stochastic")
    first = list(stream.iterate(max_iter=30))
    second = stream.iterate(max_iter=30)
    state = json.loads(json.dumps(pescador.get_state(second)))
    expected = list(second)
    assert expected != first
    assert list(build("stochastic").iterate(max_iter=30, state=state)) == \
        expected
