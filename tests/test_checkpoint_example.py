"""examples/checkpoint_resume.py: a training process killed with SIGKILL
after a checkpoint, resumed in a new process, gives the uninterrupted
run's batches and model."""

import os

from .test_examples import load


def test_killed_training_resumes_exactly_and_cheaply(capsys):
    result = load("checkpoint_resume").main([
        "--files", "8", "--steps", "60", "--batch-size", "8",
        "--every", "20", "--kill-after", "30"])
    out = capsys.readouterr().out
    # The child got past its checkpoint at step 20 and was killed at 30.
    assert result["killed"][-1] == "step 30"
    assert "checkpoint at step 20" in result["killed"]
    assert result["logged_before_kill"] == list(range(1, 31))
    assert result["checkpoint"] == 20
    assert not os.path.exists("/proc/{}".format(result["killed_pid"]))
    # Steps 21-30 ran twice, the second time the same: all 60 batches and
    # the model equal the uninterrupted run's.
    assert result["same_steps"] and result["same_model"]
    assert "same 60 batches as the uninterrupted run: True" in out
    assert "resuming at step 20" in out
    # Resuming re-made the open streams' examples (at most 4 active
    # streams, 50 rows each, but here a few per stream), not the 160
    # examples before the checkpoint.
    [made] = result["made_to_resume"]
    assert 8 <= made < result["examples_before"] / 2 == 80
