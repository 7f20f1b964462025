"""Checkpoint and exact resume of ZMQStreamer, for any n_workers.

Each case takes N items of a ZMQStreamer iteration, round-trips
`pescador.get_state` through JSON, and resumes an equal stream in a fresh
subprocess (one for the whole matrix: it receives the states as JSON on
stdin), which must yield exactly what the uninterrupted iteration yielded
after item N (same length, same items), and then the same next epoch.
The uninterrupted iteration is the one the checkpoints were taken from:
taking a state must not change what follows.
"""

import json
import multiprocessing
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

import pescador
from pescador import (ChainMux, PescadorError, StochasticMux, Streamer,
                      ZMQStreamer)
from pescador._background.checkpoint import Received
from pescador._background.worker import SNAPSHOT_ITEMS
from pescador._merge import merge
from pescador.split import EpochStreamer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAIT = 120  # seconds: a bound on each subprocess


def labelled(label, n, nbytes=0):
    """n items ``{'label', 'i'}`` (and an array of ``nbytes``, if any:
    large ones go through shared memory)."""
    for i in range(n):
        item = {"label": np.array(label), "i": np.array(i)}
        if nbytes:
            item["X"] = np.full(nbytes // 8, float(i))
        yield item


def stochastic():
    """A seeded StochasticMux, infinite (with replacement)."""
    return StochasticMux([Streamer(labelled, k, 40) for k in range(6)],
                         n_active=3, rate=8, random_state=7)


def chain():
    """A ChainMux of 2500 items: share sizes differ for 2 workers (1500
    and 1000), so one ends first."""
    return ChainMux([Streamer(labelled, k, 500) for k in range(5)])


def large():
    """Items with a 64 KB array each, through shared memory."""
    return ChainMux([Streamer(labelled, k, 100, 1 << 16) for k in range(3)])


STREAMS = {"stochastic": stochastic, "chain": chain, "large": large}


def key(item):
    return int(item["label"]) * 1000 + int(item["i"])


def resume_case(case):
    """Run one case (in the subprocess): resume ``case['state']`` and
    return the keys of the rest, and of ``case['after']`` epochs after."""
    stream = ZMQStreamer(STREAMS[case["stream"]](), n_workers=case["k"],
                         ordered=case.get("ordered", True))
    method = getattr(stream, case.get("call", "iterate"))
    rest = [key(item) for item in method(max_iter=case["max_iter"],
                                         state=case["state"])]
    after = [[key(item) for item in stream.iterate(max_iter=case["max_iter"])]
             for _ in range(case.get("after", 0))]
    return {"rest": rest, "after": after, "epoch": stream.epoch}


def resume_in_subprocess(cases):
    """`resume_case` of each case, in one fresh interpreter."""
    source = ("import json, sys\n"
              "from tests.test_resume_zmq import resume_case\n"
              "cases = json.load(sys.stdin)\n"
              "print(json.dumps([resume_case(case) for case in cases]))\n")
    done = subprocess.run(
        [sys.executable, "-c", source], input=json.dumps(cases), cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
        text=True, timeout=WAIT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def checkpoints(stream, ns, max_iter=None, call="iterate", epochs=0):
    """Iterate ``stream`` once, taking the state (JSON round-tripped) after
    each count of ``ns``; return (all keys, states, next epochs' keys)."""
    items = getattr(stream, call)(max_iter=max_iter)
    keys, states = [], {}
    for n in sorted(ns):
        while len(keys) < n:
            keys.append(key(next(items)))
        states[n] = json.loads(json.dumps(pescador.get_state(items)))
    keys += [key(item) for item in items]
    after = [[key(item) for item in stream.iterate(max_iter=max_iter)]
             for _ in range(epochs)]
    return keys, states, after


def test_resume_matches_uninterrupted_run():
    # (stream, n_workers, max_iter, checkpoints): before the first item,
    # within the first snapshot period, and past snapshots (and, for the
    # chain with 2 workers, after its smaller share has ended).
    matrix = [("stochastic", 1, 2500, (0, 5, 2200)),
              ("stochastic", 2, 2500, (5, 2200)),
              ("stochastic", 3, 2500, (5, 2400)),
              ("chain", 1, None, (5, 2200)),
              ("chain", 2, None, (0, 5, 1500, 2200, 2500)),
              ("chain", 3, None, (5, 2200))]
    cases, expected = [], []
    for name, k, max_iter, ns in matrix:
        full, states, after = checkpoints(
            ZMQStreamer(STREAMS[name](), n_workers=k), ns, max_iter,
            epochs=1)
        assert len(full) == (max_iter or 2500)
        for n, state in states.items():
            workers = (state["stream"] or {}).get("workers", [])
            # Resuming re-runs at most a snapshot's worth per worker.
            assert all(w["skip"] <= SNAPSHOT_ITEMS for w in workers)
            if n / k > 1.05 * SNAPSHOT_ITEMS:  # a periodic snapshot too
                assert any(w["state"]["taken"] > 0 for w in workers)
            cases.append({"stream": name, "k": k, "max_iter": max_iter,
                          "state": state, "after": 1})
            expected.append((full[n:], after, n))
    chain_2 = cases[[c["stream"] == "chain" and c["k"] == 2
                     for c in cases].index(True) + 3]["state"]["stream"]
    assert [w["ended"] for w in chain_2["workers"]] == [False, True]
    results = resume_in_subprocess(cases)
    assert len(results) == len(cases)
    for case, result, (rest, after, n) in zip(cases, results, expected):
        label = (case["stream"], case["k"], n)
        assert len(result["rest"]) == len(rest), label
        assert result["rest"] == rest, label
        assert result["after"] == after, label  # the next epoch too
        assert result["epoch"] == 2, label


def test_resume_within_a_cycle():
    # A state taken in the second pass of a cycle: the rest of that pass
    # and the start of the next one (epoch 2), as uninterrupted.
    full, states, _ = checkpoints(ZMQStreamer(chain(), n_workers=2),
                                  [3000], max_iter=5500, call="cycle")
    assert len(full) == 5500 and states[3000]["stream"]["epoch"] == 1
    (result,) = resume_in_subprocess([{
        "stream": "chain", "k": 2, "max_iter": 5500, "call": "cycle",
        "state": states[3000]}])
    assert len(result["rest"]) == 2500 and result["rest"] == full[3000:]
    assert result["epoch"] == 3


def test_unordered_resume_gives_each_worker_the_rest_of_its_share():
    # ordered=False: the order is the arrival order, not reproducible; the
    # resumed iteration continues each worker's share from what the
    # consumer had received of it, so the items are exactly the rest.
    n = 400
    stream = ZMQStreamer(chain(), n_workers=2, ordered=False)
    items = stream.iterate()
    first = [key(next(items)) for _ in range(n)]
    state = json.loads(json.dumps(pescador.get_state(items)))
    items.close()
    assert state["stream"]["merge"] is None
    (result,) = resume_in_subprocess([{
        "stream": "chain", "k": 2, "max_iter": None, "ordered": False,
        "state": state}])
    everything = [key(item) for item in chain()]
    got = first + result["rest"]
    assert len(got) == len(everything) == 2500
    assert Counter(got) == Counter(everything)
    for share in range(2):  # each share in its own order
        mine = [x for x in got if (x // 1000) % 2 == share]
        assert mine == [x for x in everything if (x // 1000) % 2 == share]


def test_state_at_the_end_and_on_a_fresh_stream():
    stream = ZMQStreamer(chain(), n_workers=2)
    items = stream.iterate()
    assert len(list(items)) == 2500
    state = json.loads(json.dumps(pescador.get_state(items)))
    assert state["done"] is True
    again = ZMQStreamer(chain(), n_workers=2)
    assert list(again.iterate(state=state)) == []
    # The epoch after an ended one is the next, as without the checkpoint.
    assert again.epoch == stream.epoch == 1
    epoch_after = [key(item) for item in stream.iterate(max_iter=50)]
    assert [key(item) for item in again.iterate(max_iter=50)] == epoch_after
    # Likewise from a state taken at max_iter.
    limited = ZMQStreamer(chain(), n_workers=2).iterate(max_iter=30)
    assert len(list(limited)) == 30
    state = json.loads(json.dumps(pescador.get_state(limited)))
    resumed = ZMQStreamer(chain(), n_workers=2)
    assert list(resumed.iterate(max_iter=30, state=state)) == []
    assert resumed.epoch == 1
    # Before the first item: the whole epoch.
    fresh = pescador.get_state(ZMQStreamer(chain(), n_workers=2).iterate())
    assert len(list(again.iterate(state=fresh))) == 2500


def test_resume_with_spawned_workers():
    # The jobs, resume states included, are pickled to the workers.
    full, states, _ = checkpoints(ZMQStreamer(stochastic(), n_workers=2),
                                  [30], max_iter=300)
    again = ZMQStreamer(stochastic(), n_workers=2, start_method="spawn")
    rest = [key(item) for item in again.iterate(max_iter=300,
                                                state=states[30])]
    assert len(rest) == 270 and rest == full[30:]


def test_unseeded_resume_continues_with_the_right_count():
    # Not exact (each worker reseeds numpy from fresh entropy), but the
    # resumed iteration runs and stops at the same total.
    mux = StochasticMux([Streamer(labelled, k, 40) for k in range(4)],
                        n_active=2, rate=4, random_state=None)
    state = state_after(ZMQStreamer(mux, n_workers=2), 50, max_iter=200)
    rest = list(ZMQStreamer(mux, n_workers=2).iterate(max_iter=200,
                                                      state=state))
    assert len(rest) == 150


def counted(label, n, made):
    """``labelled(label, n)``, counting each item made in ``made`` (a
    shared `multiprocessing.Value`, inherited by forked workers)."""
    for item in labelled(label, n):
        with made.get_lock():
            made.value += 1
        yield item


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                    reason="the counter is inherited through fork")
def test_resume_does_not_rerun_the_epoch():
    # 20000 items over 2 workers, a checkpoint at 15000: the workers re-run
    # at most a snapshot's worth each, plus the activation open at their
    # snapshot (one streamer, 2000 items): far less than the 15000 before.
    made = multiprocessing.Value("q", 0)

    def pool():
        mux = ChainMux([Streamer(counted, k, 2000, made) for k in range(10)])
        return ZMQStreamer(mux, n_workers=2, start_method="fork")

    full, states, _ = checkpoints(pool(), [15000])
    assert len(full) == 20000
    made.value = 0
    rest = [key(item) for item in pool().iterate(state=states[15000])]
    assert len(rest) == 5000 and rest == full[15000:]
    assert 5000 <= made.value <= 5000 + 2 * (SNAPSHOT_ITEMS + 2000)


@pytest.mark.parametrize("weights", [None, [0.5, 0.3, 0.2]])
def test_merge_resumes_at_any_position(weights):
    # The merge alone, in-process: at block boundaries (1024 draws), where
    # shares end, and after; each share continues from what was taken.
    sizes = [3000, 1500, 700]
    shares = [range(k * 10000, k * 10000 + n) for k, n in enumerate(sizes)]
    full = list(merge(shares, weights, 3))
    assert len(full) == sum(sizes)
    ends = [max(i for i, x in enumerate(full) if x // 10000 == k)
            for k in range(3)]
    points = {0, 1, 1023, 1024, 1025, 2048, 2049, len(full)}
    points |= {end + d for end in ends for d in (-1, 0, 1, 2)}
    for n in sorted(p for p in points if 0 <= p <= len(full)):
        merged = merge([iter(share) for share in shares], weights, 3)
        first = [next(merged) for _ in range(n)]
        state = json.loads(json.dumps(pescador.get_state(merged)))
        taken = Counter(x // 10000 for x in first)
        rest = list(merge([iter(share[taken[k]:])
                           for k, share in enumerate(shares)],
                          weights, 3, state))
        assert len(first) + len(rest) == len(full), n
        assert first + rest == full, n


# -- states that do not fit ---------------------------------------------------

def state_after(stream, n, max_iter=None):
    items = stream.iterate(max_iter=max_iter)
    for _ in range(n):
        next(items)
    state = json.loads(json.dumps(pescador.get_state(items)))
    items.close()
    return state


def test_mismatched_states_are_refused():
    state = state_after(ZMQStreamer(chain(), n_workers=2), 5)
    with pytest.raises(PescadorError, match="n_workers 2, but this stream "
                                            "has 3"):
        next(ZMQStreamer(chain(), n_workers=3).iterate(state=state))
    with pytest.raises(PescadorError, match="ordered True, but this stream "
                                            "has False"):
        next(ZMQStreamer(chain(), n_workers=2, ordered=False).iterate(
            state=state))
    # Another stream: a round-robin merge's state for a weighted one.
    with pytest.raises(PescadorError, match="round-robin"):
        next(ZMQStreamer(stochastic(), n_workers=2).iterate(state=state))
    # ... and with one worker, the share's state (checked in the worker,
    # re-raised here).
    one = state_after(ZMQStreamer(chain(), n_workers=1), 5)
    with pytest.raises(PescadorError, match="ChainMux"):
        next(ZMQStreamer(stochastic(), n_workers=1).iterate(state=one))
    # A ZMQStreamer's state for a plain Streamer or mux, and back.
    with pytest.raises(PescadorError, match="ZMQStreamer"):
        next(chain().iterate(state=state))
    plain = state_after(chain(), 5)
    with pytest.raises(PescadorError, match="ChainMux"):
        next(ZMQStreamer(chain(), n_workers=2).iterate(state=plain))
    # Another call or max_iter.
    with pytest.raises(PescadorError, match="max_iter"):
        next(ZMQStreamer(chain(), n_workers=2).iterate(max_iter=9,
                                                       state=state))
    # A damaged entry.
    state["stream"]["workers"][0]["skip"] = -1
    with pytest.raises(PescadorError, match="skip"):
        next(ZMQStreamer(chain(), n_workers=2).iterate(state=state))


def test_an_executor_without_checkpoints_says_so():
    # RayStreamer's case (starting Ray is slow): the EpochStreamer base.
    class Epochs(EpochStreamer):
        def __init__(self, streamer):
            super().__init__(streamer)
            self.epoch = 0

        def _source(self, max_iter=None):
            yield from pescador.shard(self.streamer, 0, 1, epoch=self.epoch)

    items = Epochs(chain()).iterate()
    next(items)
    with pytest.raises(PescadorError, match="Epochs cannot checkpoint yet"):
        pescador.get_state(items)
    # Before the first item, the state is "from the start", which works;
    # a state within the epoch cannot.
    state = pescador.get_state(Epochs(chain()).iterate())
    assert len(list(Epochs(chain()).iterate(state=state))) == 2500
    state["stream"] = {"epoch": 0}
    with pytest.raises(PescadorError, match="Epochs cannot checkpoint yet"):
        next(Epochs(chain()).iterate(state=state))


def test_a_share_that_cannot_checkpoint_says_so():
    received = Received()
    received.snapshot({"count": 3, "error": "no way"})
    with pytest.raises(PescadorError, match="worker 1 cannot .no way"):
        received.position(1)


# -- nothing left behind ------------------------------------------------------

LEAK_SCRIPT = """
import json, os, sys
from tests import zmq_helpers
from tests.test_resume_zmq import large, key
from pescador import ZMQStreamer
from pescador._background import shm

state = json.load(sys.stdin)
prefixes = []
make = shm.run_prefix
shm.run_prefix = lambda: prefixes.append(make()) or prefixes[-1]
items = ZMQStreamer(large(), n_workers=2).iterate(state=state)
got = [key(next(items)) for _ in range(3)]
pids = sorted(zmq_helpers.children())
items.close()
left = [name for name in os.listdir(shm.SHM_DIR)
        if any(name.startswith(p) for p in prefixes)]
print(json.dumps({"got": got, "pids": pids, "left": left,
                  "children": sorted(zmq_helpers.children()),
                  "gone": all(zmq_helpers.pid_gone(p) for p in pids)}))
"""


def test_early_stop_of_a_resumed_iteration_leaves_nothing():
    full, states, _ = checkpoints(ZMQStreamer(large(), n_workers=2), [150])
    done = subprocess.run(
        [sys.executable, "-c", LEAK_SCRIPT], input=json.dumps(states[150]),
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
        capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    report = json.loads(done.stdout)
    assert report["got"] == full[150:153]
    assert len(report["pids"]) == 2  # the workers ran
    assert report["children"] == [] and report["gone"]
    assert report["left"] == []
