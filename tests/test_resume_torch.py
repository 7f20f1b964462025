"""Resuming a TorchDataset through torchdata's StatefulDataLoader.

The uninterrupted runs and the checkpoints are taken in one subprocess,
the resumed runs in another, fresh one (``_main`` below is what both run):
each case takes some batches, saves ``loader.state_dict()`` as JSON (it is
JSON-able: no pickle needed), and a fresh loader over a fresh dataset
loads it and must give exactly the rest of the epoch and the next epoch of
the uninterrupted run. The generators count the items they make in a file
(the workers are other processes), which proves that the resumed run does
not replay the batches taken before the checkpoint.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchdata.stateful_dataloader")

import pescador  # noqa: E402
import pescador.adapters  # noqa: E402
from pescador import PescadorError, StochasticMux, Streamer  # noqa: E402

# torchdata 0.11 calls a torch function that torch 2.13 deprecates.
pytestmark = pytest.mark.filterwarnings(
    "ignore:'set_vital' is deprecated:UserWarning")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every streamer yields ITEMS items, so that an open activation holds at
# most that many; N_ACTIVE of them are open per share.
ITEMS, N_ACTIVE, MAX_ITER, BATCH = 4, 2, 80, 4
TAKE = 12    # batches before the checkpoint: 48 items
# Where `counted` notes each item it makes (set before the loader forks
# its workers, which inherit it).
COUNT_PATH = None


def counted(i):
    """``ITEMS`` items of streamer ``i``, each noted in ``COUNT_PATH``."""
    for j in range(ITEMS):
        if COUNT_PATH is not None:
            fd = os.open(COUNT_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, b".")
            finally:
                os.close(fd)
        yield {"x": np.asarray(100 * i + j)}


def make_stream(kind, n_streamers=8):
    mux = StochasticMux([Streamer(counted, i) for i in range(n_streamers)],
                        n_active=N_ACTIVE, rate=3, random_state=3)
    if kind == "mux":
        return mux
    return Streamer(pescador.buffer_stream, mux, BATCH)


def make_loader(case, n_streamers=8):
    from torchdata.stateful_dataloader import StatefulDataLoader

    # MAX_ITER items in batches of BATCH, by the loader or by pescador.
    batch_size = BATCH if case["kind"] == "mux" else None
    dataset = pescador.adapters.TorchDataset(
        make_stream(case["kind"], n_streamers),
        max_iter=MAX_ITER if batch_size else MAX_ITER // BATCH)
    loader = StatefulDataLoader(
        dataset, batch_size=batch_size, num_workers=case["workers"],
        snapshot_every_n_steps=case.get("every", 1))
    return dataset, loader


def epoch(dataset, loader, number, take=None, set_epoch=True):
    """The batches of epoch ``number`` (the first ``take`` only)."""
    if set_epoch:
        dataset.set_epoch(number)
    batches = []
    for batch in loader:
        batches.append(batch["x"].tolist())
        if len(batches) == take:
            break
    return batches


def produced(path):
    return os.path.getsize(path) if os.path.exists(path) else 0


# -- what the subprocesses run -------------------------------------------------

def checkpoint(case):
    """The uninterrupted epochs 0, 1 and 2; and the state after epoch 0 and
    ``take`` batches of epoch 1 (all of them: at its end)."""
    set_epoch = case.get("set_epoch", True)
    dataset, loader = make_loader(case)
    full = [epoch(dataset, loader, number, set_epoch=set_epoch)
            for number in range(3)]
    dataset, loader = make_loader(case)
    epoch(dataset, loader, 0, set_epoch=set_epoch)
    first = epoch(dataset, loader, 1, take=case["take"], set_epoch=set_epoch)
    state = loader.state_dict()
    return {"full": full, "first": first, "state": json.dumps(state)}


def resume(case, folder):
    """Load the state into a fresh loader: the rest of epoch 1 (counting
    the items made for it), then epoch 2. A state taken at the end of
    epoch 1 has no rest: the loader's next iteration is epoch 2."""
    global COUNT_PATH
    set_epoch = case.get("set_epoch", True)
    COUNT_PATH = os.path.join(folder, "{}.count".format(case["name"]))
    dataset, loader = make_loader(case)
    loader.load_state_dict(json.loads(case["state"]))
    rest = [] if case["take"] is None else epoch(dataset, loader, 1,
                                                 set_epoch=set_epoch)
    made = produced(COUNT_PATH)
    COUNT_PATH = None
    return {"rest": rest, "made": made,
            "next": epoch(dataset, loader, 2, set_epoch=set_epoch)}


def _main():
    job = json.load(sys.stdin)
    run = {"checkpoint": lambda case: checkpoint(case),
           "resume": lambda case: resume(case, job["folder"])}[job["run"]]
    json.dump([run(case) for case in job["cases"]], sys.stdout)


def in_fresh_process(run, cases, folder):
    out = subprocess.run(
        [sys.executable, "-c",
         "from tests.test_resume_torch import _main; _main()"],
        input=json.dumps({"run": run, "cases": cases, "folder": str(folder)}),
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout)
    assert len(results) == len(cases)
    return results


def open_items(state):
    """The items taken from the activations open in a loader state: what
    resuming re-runs (an upper bound of it)."""
    if isinstance(state, list):
        return sum(open_items(value) for value in state)
    if not isinstance(state, dict):
        return 0
    total = sum(open_items(value) for value in state.values())
    for slot in state.get("slots") or []:
        if slot is not None:
            total += slot["pulled"]
    return total


def maps_resume():
    """True once buffer_stream resumes through its mux's state (rather
    than by skipping every batch before the checkpoint)."""
    items = make_stream("batches").iterate()
    next(items)
    try:
        return "inner" in pescador.get_state(items)["stream"]
    except PescadorError:
        return False


CASES = [
    {"name": "w0", "kind": "mux", "workers": 0, "take": TAKE},
    {"name": "w2", "kind": "mux", "workers": 2, "take": TAKE},
    # torchdata snapshots the workers every 3 batches and replays the
    # batches since the last snapshot on top of pescador's resume.
    {"name": "w2_every3", "kind": "mux", "workers": 2, "take": TAKE + 1,
     "every": 3},
    # At the end of epoch 1: the resumed loader starts epoch 2 afresh.
    {"name": "w0_end", "kind": "mux", "workers": 0, "take": None},
    {"name": "w2_end", "kind": "mux", "workers": 2, "take": None},
    # Without set_epoch, in the main process: each epoch is the mux's next
    # activation, from the mux's own generator, which the state restores.
    {"name": "w0_own", "kind": "mux", "workers": 0, "take": TAKE,
     "set_epoch": False},
    {"name": "w0_own_end", "kind": "mux", "workers": 0, "take": None,
     "set_epoch": False},
]
BATCH_CASES = [
    {"name": "w0_batches", "kind": "batches", "workers": 0, "take": TAKE},
    {"name": "w2_batches", "kind": "batches", "workers": 2, "take": TAKE},
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every case checkpointed in one fresh process and resumed in
    another: {name: (case, checkpoint run, resumed run)}."""
    cases = [dict(case) for case in CASES + (
        BATCH_CASES if maps_resume() else [])]
    folder = tmp_path_factory.mktemp("resume_torch")
    saved = in_fresh_process("checkpoint", cases, folder)
    for case, run in zip(cases, saved):
        case["state"] = run["state"]
    resumed = in_fresh_process("resume", cases, folder)
    return {case["name"]: (case, run, again)
            for case, run, again in zip(cases, saved, resumed)}


def check_resumed(case, run, again):
    full0, full1, full2 = run["full"]
    assert len(full0) == len(full1) == len(full2) == MAX_ITER // BATCH
    assert full2 != full1 != full0      # each epoch another mix
    assert run["first"] == full1[:len(run["first"])]
    assert len(run["first"]) == (case["take"] or len(full1))
    assert again["rest"] == full1[len(run["first"]):]
    assert again["next"] == full2
    # The resumed run made the items it gave, plus what resuming re-ran
    # (the open activations' items), plus at most one item of look-ahead
    # per slot; never the items before the checkpoint.
    before = sum(len(batch) for batch in run["first"])
    rest = sum(len(batch) for batch in again["rest"])
    state = json.loads(case["state"])
    shares = max(case["workers"], 1)
    steps = state.get("_steps_since_snapshot", 0) * BATCH
    bound = open_items(state) + N_ACTIVE * shares + steps
    assert again["made"] <= rest + bound
    if case["take"] is not None:
        assert bound < before / 2
        assert open_items(state) > 0


@pytest.mark.parametrize("name", [case["name"] for case in CASES])
def test_stateful_dataloader_resumes_exactly_without_replay(runs, name):
    check_resumed(*runs[name])


@pytest.mark.parametrize("name", [case["name"] for case in BATCH_CASES])
def test_stateful_dataloader_resumes_pescador_batches(runs, name):
    if name not in runs:
        pytest.skip("buffer_stream does not resume through its mux's state "
                    "yet (it would skip every batch before the checkpoint)")
    check_resumed(*runs[name])


def test_state_dict_is_json_and_before_any_iteration():
    dataset = pescador.adapters.TorchDataset(make_stream("mux"),
                                             max_iter=MAX_ITER)
    assert dataset.state_dict() == {
        "torch_dataset": 1, "epoch": 0, "share": None, "max_iter": MAX_ITER,
        "cycle": False, "stream": None}
    dataset.set_epoch(2)
    items = iter(dataset)
    taken = [int(next(items)["x"]) for _ in range(5)]
    state = json.loads(json.dumps(dataset.state_dict()))
    assert (state["epoch"], state["share"]) == (2, [0, 1])
    assert state["stream"]["taken"] == 5
    rest = [int(x["x"]) for x in items]
    assert len(taken) + len(rest) == MAX_ITER

    again = pescador.adapters.TorchDataset(make_stream("mux"),
                                           max_iter=MAX_ITER)
    again.load_state_dict(state)
    assert again.state_dict() == state      # loaded, not yet iterated
    # The resumed iteration runs at the state's epoch; the ones after it at
    # the dataset's (StatefulDataLoader loads the state when it starts
    # iterating, after the set_epoch of the loop that resumes).
    assert again.epoch == 0
    assert [int(x["x"]) for x in again] == rest
    again.set_epoch(2)
    assert [int(x["x"]) for x in again] == taken + rest


def test_abandoned_iteration_keeps_its_last_position():
    dataset = pescador.adapters.TorchDataset(make_stream("mux"),
                                             max_iter=MAX_ITER)
    items = iter(dataset)
    for _ in range(7):
        next(items)
    items.close()
    del items
    assert dataset.state_dict()["stream"]["taken"] == 7


@pytest.mark.parametrize("workers", [0, 2])
def test_state_of_another_stream_is_refused(workers):
    dataset, loader = make_loader({"kind": "mux", "workers": workers})
    epoch(dataset, loader, 0, take=3)
    state = json.loads(json.dumps(loader.state_dict()))
    # A mux over 7 streamers instead of 8: the state does not fit.
    dataset, loader = make_loader({"kind": "mux", "workers": workers},
                                  n_streamers=7)
    loader.load_state_dict(state)
    with pytest.raises(PescadorError, match="does not fit"):
        epoch(dataset, loader, 0)
    if workers:
        # The error reached us from a worker; stop the workers now (left to
        # the garbage collector, torch waits 5 s for each) and check.
        pids = [worker.pid for worker in loader._iterator._workers]
        loader._iterator._shutdown_workers()
        assert not any(os.path.exists("/proc/{}".format(pid))
                       for pid in pids)


def test_stream_that_cannot_resume_still_iterates():
    def rows():
        for i in range(6):
            yield {"x": np.asarray(i)}

    # A map over a one-shot generator object: its items cannot be made
    # again, so it has no state; iterating must not ask for one.
    dataset = pescador.adapters.TorchDataset(
        Streamer(pescador.buffer_stream, rows(), 2))
    items = iter(dataset)
    assert next(items)["x"].tolist() == [0, 1]
    if maps_resume():
        with pytest.raises(PescadorError, match="one-shot"):
            dataset.state_dict()
    assert [batch["x"].tolist() for batch in items] == [[2, 3], [4, 5]]


def test_invalid_states_are_refused():
    dataset = pescador.adapters.TorchDataset(make_stream("mux"),
                                             max_iter=MAX_ITER)
    with pytest.raises(PescadorError, match="Invalid state for TorchDataset"):
        dataset.load_state_dict({"_num_yielded": 3})
    state = dataset.state_dict()
    with pytest.raises(PescadorError, match="max_iter 10.*has 80"):
        dataset.load_state_dict(dict(state, max_iter=10))
    with pytest.raises(PescadorError, match="cycle True"):
        dataset.load_state_dict(dict(state, cycle=True))
    with pytest.raises(PescadorError, match="share"):
        dataset.load_state_dict(dict(state, share="all"))
    with pytest.raises(PescadorError, match="epoch=-1"):
        dataset.load_state_dict(dict(state, epoch=-1))
    # Taken in worker 1 of 2; iterated here as the only share.
    dataset.load_state_dict(dict(state, share=[1, 2]))
    items = iter(dataset)       # the DataLoader's workers pass on errors
    with pytest.raises(PescadorError, match=r"share .*\[1, 2\].*\[0, 1\]"):
        next(items)             # of next(), not of iter()
