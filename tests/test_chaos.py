"""Local multi-process runs that lose processes: rollout actors and a replay shard killed by PID, and a driver
killed with SIGKILL and resumed. Each run is the real CLI in its own process with its own Ray instance."""

import json
import os
import signal
import time

import pytest
from procs import run_cli, start_train, wait_for

from learner.checkpoint import latest_checkpoint, load_checkpoint


@pytest.mark.slow
def test_killed_actors_shard_and_learner_are_restarted_and_the_run_still_learns(tmp_path):
    run = tmp_path / "chaos"
    snapshot_every_s = 2.0
    proc, log = start_train(
        run,
        "train.total_updates=1000",
        "train.max_seconds=150",
        "train.eval_every=250",
        "train.checkpoint_every=250",
        f"replay.snapshot_every_s={snapshot_every_s}",
    )
    wait_for(run / "processes.json", proc, log)
    pids = json.loads((run / "processes.json").read_text())
    for pid in (pids["actors"][0], pids["actors"][1], pids["shards"][0], pids["learner"]):
        time.sleep(3.0)
        assert proc.poll() is None, "the run finished before every process was killed"
        os.kill(pid, signal.SIGKILL)
    assert proc.wait(timeout=400) == 0, log.read_text()[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["eval"]["success_rate"] >= 0.9
    assert summary["actor_restarts"] >= 2
    assert summary["shard_restarts"] >= 1
    assert summary["learner_restarts"] == 1 and summary["learner_updates"] == 1000
    # No more than about one snapshot interval's inserts (the ledger times them): a snapshot falls due every interval,
    # but one due while the previous write is still running waits for the next insert after it, so the window is an
    # interval plus at most one write (2.3 s against 2.0 once, on a machine running other tests). Pushes lost on the
    # way are at most the pushes in flight when the shard died.
    assert summary["replay_lost_window_s"] < 2 * snapshot_every_s
    in_flight = 2 * 4 * 32 * 8  # actors x actors.max_pushes_in_flight x actors.batch_size x reverse's episode length
    assert summary["replay_transitions_lost_in_pushes"] <= in_flight
    per_interval = summary["env_steps"] / summary["train_time_s"] * snapshot_every_s  # at the run's mean rate
    print(
        "chaos:",
        {
            k: summary[k]
            for k in (
                "actor_restarts",
                "shard_restarts",
                "learner_restarts",
                "replay_transitions_lost_in_shards",
                "replay_transitions_lost_in_pushes",
                "replay_lost_window_s",
                "env_steps",
                "train_time_s",
            )
        },
        "per snapshot interval at the mean insert rate",
        round(per_interval),
    )


def _stored_history(run) -> list:
    """The evaluation history the newest checkpoint of `run` holds (the driver's counters as the learner last had
    them); [] before the first checkpoint."""
    path = latest_checkpoint(run / "checkpoints")
    return load_checkpoint(path).recorder["tracker"]["history"] if path else []


@pytest.mark.slow
def test_a_driver_killed_with_sigkill_resumes_from_its_checkpoint(tmp_path):
    run = tmp_path / "killed"
    proc, log = start_train(
        run,
        "train.total_updates=1000",
        "train.checkpoint_every=100",
        "train.eval_every=50",
        "train.max_seconds=150",
        "replay.snapshot_every_s=1",
    )
    # The learner checkpoints itself with the driver's counters it was last handed, so the first checkpoint may
    # predate the first recorded evaluation: wait for one that holds an evaluation.
    t0 = time.time()
    while not _stored_history(run):
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.time() - t0 < 180, "no checkpoint held an evaluation"
        time.sleep(0.2)
    time.sleep(1.0)  # past a shard snapshot too
    assert proc.poll() is None, "the run finished before it was killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "summary.json").exists()
    stored = _stored_history(run)  # what the resume starts from
    resumed = run_cli("train", "--resume", str(run), timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    start = summary["resumed_from_updates"]
    assert start >= 100 and summary["learner_updates"] >= 1000
    # the history before the kill is kept, and the resumed run's evaluations follow it
    assert stored and summary["eval_history"][: len(stored)] == stored
    assert all(h["updates"] > stored[-1]["updates"] for h in summary["eval_history"][len(stored) :])
    assert summary["env_steps"] > 0 and summary["eval"]["success_rate"] is not None


@pytest.mark.slow
def test_ctrl_c_stops_a_local_run_with_checkpoint_snapshot_and_summary(tmp_path):
    run = tmp_path / "interrupted"
    proc, log = start_train(run, "train.total_updates=100000", "train.checkpoint_every=100", "train.max_seconds=150")
    wait_for(run / "checkpoints" / "ckpt_00000100.pt", proc, log)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130, log.read_text()[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped_by"] == "SIGINT" and 100 <= summary["learner_updates"] < 100000
    assert (run / "checkpoints" / f"ckpt_{summary['learner_updates']:08d}.pt").exists()
    assert (run / "replay" / "shard-0.snap").exists()
    assert "continue with: tokenq train --resume" in log.read_text()
