"""
Checkpoint and resume: kill the training, carry on where it stopped
===================================================================

A training loop saves its model and the position of its stream together,
every few steps, in one JSON file::

    checkpoint = {"step": step, "model": weights.tolist(),
                  "stream": pescador.get_state(items)}

This script runs that loop three times. First uninterrupted, for
reference. Then in a child process that it kills with ``SIGKILL`` a few
steps after a checkpoint, as a preempted job dies. Then in a new process
that loads the checkpoint and resumes the stream with
``iterate(..., state=checkpoint["stream"])``. The batches of the killed
and the resumed runs together are exactly those of the uninterrupted run,
and so is the model they train (to the last bit), while resuming re-made
only the few examples of the streams that were open at the checkpoint.
"""

# sphinx_gallery_thumbnail_path = "_generated/mux_stochastic.png"

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

import pescador

# This file, to run it again as the training process (the gallery that
# builds the docs runs examples without __file__, with it in sys.argv[0]).
SCRIPT = os.path.abspath(globals().get("__file__") or sys.argv[0])
N_FEATURES = 4
# Examples made by `examples()` in this process.
made = 0


def examples(file_id, n_rows=50):
    """Stand-in for reading one file: its rows in order, deterministic
    given ``file_id``, each with an ``id`` to check the order with."""
    global made
    rng = np.random.default_rng(file_id)
    weights = np.arange(1.0, N_FEATURES + 1)
    for row in range(n_rows):
        x = rng.normal(size=N_FEATURES)
        made += 1
        yield {"x": x, "y": np.array(x @ weights + 0.5),
               "id": np.array(1000 * file_id + row)}


def stream(n_files, seed):
    """The examples of all files, mixed: a seeded mux, so that resuming is
    exact."""
    return pescador.StochasticMux(
        [pescador.Streamer(examples, i) for i in range(n_files)],
        n_active=4, rate=8, random_state=seed)


def save(path, checkpoint):
    """Write ``checkpoint`` to ``path`` atomically: a kill during the write
    leaves the previous checkpoint whole."""
    with open(path + ".tmp", "w") as file:
        json.dump(checkpoint, file)
    os.replace(path + ".tmp", path)


def train(args):
    """The training loop: resume from the checkpoint in ``args.folder`` if
    there is one; log each step's example ids; checkpoint every
    ``args.every`` steps; after ``args.hang_after`` steps, hang (to be
    killed)."""
    path = os.path.join(args.folder, "checkpoint.json")
    checkpoint = {"step": 0, "model": [0.0] * (N_FEATURES + 1),
                  "stream": None}
    if os.path.exists(path):
        with open(path) as file:
            checkpoint = json.load(file)
        print("resuming at step", checkpoint["step"], flush=True)
    step, weights = checkpoint["step"], np.array(checkpoint["model"])
    items = stream(args.files, args.seed).iterate(
        max_iter=args.steps * args.batch_size, state=checkpoint["stream"])
    log = open(os.path.join(args.folder, "steps.jsonl"), "a")
    for batch in pescador.buffer_stream(items, args.batch_size):
        if step == checkpoint["step"] and step > 0:
            print("examples made to resume and give the first batch:",
                  made, flush=True)
        x = np.hstack([batch["x"], np.ones((len(batch["x"]), 1))])
        gradient = x.T @ (x @ weights - batch["y"]) / len(x)
        weights = weights - args.learning_rate * gradient
        step += 1
        log.write(json.dumps({"step": step, "ids": batch["id"].tolist()})
                  + "\n")
        log.flush()
        if step % args.every == 0:
            # buffer_stream takes exactly one batch of items before it
            # yields it: the state of `items` is at the batch boundary.
            save(path, {"step": step, "model": weights.tolist(),
                        "stream": pescador.get_state(items)})
            print("checkpoint at step", step, flush=True)
        print("step", step, flush=True)
        if step == args.hang_after:
            time.sleep(3600)        # still working when the kill comes
    log.close()
    save(os.path.join(args.folder, "done.json"), {"model": weights.tolist()})
    return weights


def run_training(args, folder, hang_after=None):
    """Run `train` in a new process; with ``hang_after``, kill it with
    SIGKILL once it has logged that step. Return what it printed, and its
    process id."""
    command = [sys.executable, SCRIPT, "--role", "train", "--folder", folder,
               "--hang-after", str(hang_after or 0)]
    for name in ("files", "steps", "batch_size", "every", "seed"):
        command += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    root = os.path.dirname(os.path.dirname(os.path.abspath(
        pescador.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root, os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
    # Read the pipe unbuffered: a line waiting in a file object's buffer
    # would not wake select() up.
    lines, pending, deadline = [], b"", time.monotonic() + 120
    try:
        while not (hang_after and "step {}".format(hang_after) in lines):
            ready, _, _ = select.select(
                [child.stdout], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                raise RuntimeError("the training process did not answer")
            chunk = os.read(child.stdout.fileno(), 65536)
            if not chunk:
                break       # it ended
            *done, pending = (pending + chunk).split(b"\n")
            lines += [line.decode() for line in done]
        if hang_after:
            child.send_signal(signal.SIGKILL)
    finally:
        child.kill()        # no-op if it has ended
        child.wait(timeout=60)
        child.stdout.close()
    if not hang_after and child.returncode != 0:
        raise RuntimeError("the training process failed")
    return lines, child.pid


def steps_logged(folder):
    """The example ids of each step, as the log last recorded them."""
    with open(os.path.join(folder, "steps.jsonl")) as file:
        return {entry["step"]: entry["ids"]
                for entry in map(json.loads, file)}


def main(argv=None):
    """Run, kill and resume the training; check it against an
    uninterrupted run; return what was compared."""
    parser = argparse.ArgumentParser(
        description="Checkpoint and resume: kill the training, carry on "
                    "where it stopped")
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--every", type=int, default=25,
                        help="steps between checkpoints")
    parser.add_argument("--kill-after", type=int, default=60,
                        help="the step after which the training is killed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--role", choices=["main", "train"], default="main",
                        help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--hang-after", type=int, default=0,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "train":
        train(args)
        return None

    with tempfile.TemporaryDirectory() as reference, \
            tempfile.TemporaryDirectory() as folder:
        run_training(args, reference)
        killed, killed_pid = run_training(args, folder,
                                          hang_after=args.kill_after)
        before = steps_logged(folder)
        with open(os.path.join(folder, "checkpoint.json")) as file:
            checkpoint = json.load(file)
        print("killed after step {}; last checkpoint: step {}".format(
            args.kill_after, checkpoint["step"]))
        print("the checkpoint is {} bytes of JSON".format(
            len(json.dumps(checkpoint))))
        resumed, _ = run_training(args, folder)
        print("\n".join(line for line in resumed
                        if not line.startswith("step ")))
        expected = steps_logged(reference)
        got = steps_logged(folder)      # the resumed run re-logs its steps
        with open(os.path.join(reference, "done.json")) as file:
            model = json.load(file)["model"]
        with open(os.path.join(folder, "done.json")) as file:
            resumed_model = json.load(file)["model"]
    same_steps = got == expected and len(got) == args.steps
    print("same {} batches as the uninterrupted run: {}".format(
        len(got), same_steps))
    print("same model, to the last bit:", resumed_model == model)
    print("learned", np.round(model, 2), "(true: 1 2 3 4, bias 0.5)")
    made = [int(line.rsplit(" ", 1)[1]) for line in resumed
            if line.startswith("examples made")]
    return {"same_steps": same_steps, "same_model": resumed_model == model,
            "checkpoint": checkpoint["step"], "killed": killed,
            "killed_pid": killed_pid,
            "logged_before_kill": sorted(before), "made_to_resume": made,
            "examples_before": checkpoint["step"] * args.batch_size}


if __name__ == "__main__":
    main()
