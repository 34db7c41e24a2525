"""Reliability: safe formats, replay snapshots and their loss ledger, non-finite updates, exact resume, signals,
and one clear sentence for every bad input."""

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from procs import run_cli, start_train, wait_for

from distributed.codec import weights_arrays, weights_tensors
from learner.checkpoint import save_checkpoint
from learner.learner import DivergedError, Learner, LearnerConfig
from learner.model import QNetConfig
from replay.durable import DurableShard
from replay.episodes import EpisodeBatch
from replay.format import CodecError, decode_episodes, pack_arrays, unpack_arrays, write_sealed
from replay.shard import ReplayShard, SnapshotError
from tokenq.build import build_spec
from tokenq.cli import main
from tokenq.config import load_config
from tokenq.run_dir import write_json

REPO = Path(__file__).resolve().parents[1]


def episodes(n: int, rng: np.random.Generator, P: int = 6, T: int = 8) -> EpisodeBatch:
    lengths = rng.integers(1, T + 1, size=n)
    actions = rng.integers(4, 12, size=(n, T))
    rewards = rng.random((n, T)).astype(np.float32)
    for i, length in enumerate(lengths):
        actions[i, length:] = 0
        rewards[i, length:] = 0
    return EpisodeBatch(rng.integers(4, 12, size=(n, P)), actions, rewards, lengths, priorities=rng.random(n))


# ---- safe formats -------------------------------------------------------------------------------------------------


def test_packed_arrays_round_trip_and_reject_what_they_do_not_expect():
    a = {"x": np.arange(6, dtype=np.int64).reshape(2, 3), "y": np.ones(2, np.float32)}
    arrays, meta = unpack_arrays(pack_arrays(a, {"k": 1}), "test data", {"x": ("i", 2), "y": ("f", 1)})
    assert meta == {"k": 1} and np.array_equal(arrays["x"], a["x"]) and arrays["y"].dtype == np.float32
    with pytest.raises(CodecError, match="lacks the array 'z'"):
        unpack_arrays(pack_arrays(a), "test data", {"z": ("i", 1)})
    with pytest.raises(CodecError, match="must be 1-d"):
        unpack_arrays(pack_arrays(a), "test data", {"x": ("i", 1)})
    with pytest.raises(CodecError, match="not valid packed data|does not hold packed arrays"):
        unpack_arrays(b"\xc1garbage", "test data")
    with pytest.raises(CodecError, match="not packed bytes"):
        unpack_arrays({"x": 1}, "test data")
    with pytest.raises(CodecError, match="dtype object"):
        pack_arrays({"o": np.array([object()])})
    # A pickle payload is just bytes that are not msgpack arrays: it is never unpickled.
    import pickle

    with pytest.raises(CodecError):
        unpack_arrays(pickle.dumps({"x": np.zeros(2)}), "test data")


def test_episode_batch_with_inconsistent_shapes_is_refused():
    rng = np.random.default_rng(0)
    b = episodes(4, rng)
    ok = decode_episodes(pack_arrays({k: v for k, v in b.as_dict().items()}))
    assert np.array_equal(ok.actions, b.actions)
    bad = {**b.as_dict(), "rewards": b.rewards[:3]}
    with pytest.raises(CodecError, match="inconsistent shapes"):
        decode_episodes(pack_arrays(bad))


def test_weights_travel_as_numpy_arrays_and_anything_else_is_refused():
    net = torch.nn.Linear(3, 2)
    arrays = weights_arrays(net.state_dict())
    assert all(type(a) is np.ndarray and a.dtype == np.float32 for a in arrays.values())
    back = weights_tensors({k: a.copy() for k, a in arrays.items()})
    assert all(torch.equal(back[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ValueError, match="not a numeric numpy array"):
        weights_tensors({"weight": [1.0, 2.0]})
    with pytest.raises(ValueError, match="not a dict"):
        weights_tensors(b"packed")


# ---- replay snapshots ---------------------------------------------------------------------------------------------


def test_restored_shard_continues_exactly(tmp_path):
    rng = np.random.default_rng(1)
    a = ReplayShard(64, 6, 8, alpha=0.6, seed=5)
    for _ in range(5):
        a.add(episodes(20, rng))  # wraps around: eviction included
    s = a.sample(8, 0.5)
    a.update_priorities(s.slots, s.generations, rng.random(8))
    a.save_snapshot(tmp_path / "a.snap")
    b = ReplayShard(64, 6, 8, alpha=0.6, seed=999)
    b.load_snapshot(tmp_path / "a.snap")
    for _ in range(3):
        sa, sb = a.sample(16, 0.7), b.sample(16, 0.7)
        for k, v in sa.as_dict().items():
            if k != "ages":  # seconds since insert: the clock moved on between the two samples
                assert np.array_equal(v, getattr(sb, k)), k
    assert b.stats() == a.stats()


def test_truncated_corrupted_or_misfit_snapshot_names_the_file(tmp_path):
    shard = ReplayShard(32, 6, 8)
    shard.add(episodes(10, np.random.default_rng(0)))
    path = tmp_path / "s.snap"
    shard.save_snapshot(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SnapshotError, match=f"{path}.*corrupted or truncated"):
        ReplayShard(32, 6, 8).load_snapshot(path)
    flipped = bytearray(data)
    flipped[-10] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(SnapshotError, match="checksum mismatch"):
        ReplayShard(32, 6, 8).load_snapshot(path)
    path.write_bytes(b"PK\x03\x04 not a snapshot")
    with pytest.raises(SnapshotError, match="not a tokenq snapshot file"):
        ReplayShard(32, 6, 8).load_snapshot(path)
    path.write_bytes(data)
    with pytest.raises(SnapshotError, match="does not fit this shard"):
        ReplayShard(64, 6, 8).load_snapshot(path)
    write_sealed(path, pack_arrays({"prompts": np.zeros(3)}))
    with pytest.raises(SnapshotError, match="does not fit this shard"):
        ReplayShard(32, 6, 8).load_snapshot(path)


def test_durable_shard_counts_exactly_what_a_dead_process_lost(tmp_path):
    rng = np.random.default_rng(2)
    first = DurableShard(ReplayShard(256, 6, 8), tmp_path, "shard-0", every_s=0)
    first.add(episodes(10, rng))
    covered = first.snapshot()
    late = [episodes(7, rng) for _ in range(3)]
    for b in late:
        time.sleep(0.01)
        first.add(b)  # inserted after the snapshot: lost when the process dies
    del first  # the process "dies": nothing more is written
    second = DurableShard(ReplayShard(256, 6, 8), tmp_path, "shard-0", every_s=0)
    assert second.restored and second.shard.inserted_transitions == covered
    assert second.lost == sum(b.num_transitions for b in late)
    assert second.starts == 2
    assert 0 < second.lost_window_s < 1.0  # the lost inserts came within a moment of the snapshot
    second.add(episodes(5, rng))
    second.snapshot()
    third = DurableShard(ReplayShard(256, 6, 8), tmp_path, "shard-0", every_s=0)
    assert third.lost == second.lost and third.starts == 3  # nothing new lost: the snapshot was current


def test_durable_shard_snapshots_on_its_own_clock(tmp_path):
    rng = np.random.default_rng(3)
    d = DurableShard(ReplayShard(256, 6, 8), tmp_path, "shard-1", every_s=0.05)
    d.add(episodes(4, rng))
    assert d.snapshots == 0
    time.sleep(0.06)
    d.add(episodes(4, rng))
    d.writer.join()  # the snapshot is written in the background
    assert d.snapshots == 1 and (tmp_path / "shard-1.snap").exists()


# ---- non-finite updates -------------------------------------------------------------------------------------------


def _learner_batch(rng, reward=1.0):
    from replay.episodes import SampledBatch

    b = episodes(8, rng)
    rewards = b.rewards.copy()
    rewards[:, 0] = reward
    return SampledBatch(b.prompts, b.actions, rewards, b.lengths, np.ones(8, np.float32), np.arange(8), np.arange(8))


def test_nonfinite_updates_are_skipped_then_rolled_back_then_fatal():
    net_cfg = QNetConfig(vocab_size=12, max_prompt_len=6, max_gen_len=8, d_model=32, n_heads=2, n_layers=1)
    learner = Learner(LearnerConfig(max_nonfinite=2, max_rollbacks=2), net_cfg)
    rng = np.random.default_rng(0)
    learner.update(_learner_batch(rng))
    good = learner.mark_good()
    learner.update(_learner_batch(rng))
    moved = {k: v.clone() for k, v in learner.online.state_dict().items()}
    metrics, priorities = learner.update(_learner_batch(rng, reward=float("nan")))
    assert priorities is None and learner.nonfinite_updates == 1
    assert metrics["nonfinite"] == 1.0 and np.isnan(metrics["td_loss"])  # the NaN loss is reported, not dropped
    assert all(torch.equal(moved[k], v) for k, v in learner.online.state_dict().items())  # skipped, not applied
    learner.update(_learner_batch(rng, reward=float("inf")))  # second in a row: roll back to the good state
    assert learner.rollbacks == 1 and learner.updates == good["updates"] == 1
    assert all(torch.equal(good["online"][k], v) for k, v in learner.online.state_dict().items())
    _, p = learner.update(_learner_batch(rng))
    assert p is not None and np.isfinite(p).all() and learner.updates == 2  # training goes on from there
    learner.update(_learner_batch(rng, reward=float("nan")))
    # A second rollback to the same good state is the last (max_rollbacks 2): the next failures are fatal.
    learner.update(_learner_batch(rng, reward=float("nan")))
    assert learner.rollbacks == 2
    learner.update(_learner_batch(rng, reward=float("nan")))
    with pytest.raises(DivergedError, match="training diverged"):
        learner.update(_learner_batch(rng, reward=float("nan")))
    assert learner.nonfinite_updates == 6


def test_a_diverging_run_stops_with_one_sentence(tmp_path, capsys):
    code = main(
        ["train", "--mode", "serial", "--run-dir", str(tmp_path / "r"), "learner.lr=1e38", "train.total_updates=200"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "training diverged" in err and err.strip().count("\n") == 0


# ---- resume and signals -------------------------------------------------------------------------------------------

GOLDEN = [
    "train.total_updates=300",
    "train.checkpoint_every=100",
    "train.eval_every=100",
    "train.loss_log=true",
    "train.max_seconds=1000",
    "train.torch_threads=1",
]


@pytest.mark.slow
def test_serial_resume_after_sigkill_reproduces_the_losses_exactly(tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(["train", "--mode", "serial", "--run-dir", str(whole), *GOLDEN]) == 0
    proc, log = start_train(cut, "--mode", "serial", *GOLDEN)
    wait_for(cut / "checkpoints" / "ckpt_00000100.pt", proc, log)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cut / "summary.json").exists()  # killed mid-run
    assert main(["train", "--resume", str(cut)]) == 0
    summary = json.loads((cut / "summary.json").read_text())
    assert summary["resumed_from_updates"] >= 100 and summary["learner_updates"] == 300
    losses = (cut / "td_loss.tsv").read_text().splitlines()
    assert len(losses) == 300
    assert losses == (whole / "td_loss.tsv").read_text().splitlines()  # bit for bit
    first = json.loads((whole / "summary.json").read_text())
    assert summary["eval_history"][-1]["mean_return"] == first["eval_history"][-1]["mean_return"]


@pytest.mark.slow
def test_sigterm_writes_checkpoint_snapshot_and_summary_then_exits_143(tmp_path):
    run = tmp_path / "r"
    args = ["train.total_updates=100000", "train.checkpoint_every=100", "train.max_seconds=1000"]
    proc, log = start_train(run, "--mode", "serial", *args)
    wait_for(run / "checkpoints" / "ckpt_00000100.pt", proc, log)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped_by"] == "SIGTERM" and 100 <= summary["learner_updates"] < 100000
    u = summary["learner_updates"]
    assert (run / "checkpoints" / f"ckpt_{u:08d}.pt").exists()
    assert (run / "checkpoints" / f"replay_{u:08d}.snap").exists()


# ---- bad input: one sentence, exit code 2 -------------------------------------------------------------------------


def _fake_run(root: Path, config: str = "reverse", mode: str = "serial", overrides=(), model=None) -> Path:
    """A run directory as a run leaves it after its first checkpoint (the learner at its initial weights)."""
    cfg = load_config(config, list(overrides))
    spec = build_spec(cfg)
    learner = Learner(cfg.learner, model or spec.net_cfg)
    root.mkdir(parents=True)
    write_json(root / "config.json", cfg.to_dict())
    write_json(root / "run.json", {"mode": mode, "config": config})
    state = {
        "learner": learner.state_dict(),
        "config": cfg.to_dict(),
        "counters": {},
        "torch_rng": torch.get_rng_state(),
    }
    save_checkpoint(root / "checkpoints", 100, state, keep=3)
    return root


def _bad_inputs(tmp: Path) -> dict:
    """name -> (argv, fragment of the one-line error)."""
    run = _fake_run(tmp / "run")
    trunc = _fake_run(tmp / "trunc")
    ckpt = trunc / "checkpoints" / "ckpt_00000100.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:300])
    shape = _fake_run(
        tmp / "shape", model=QNetConfig(vocab_size=12, max_prompt_len=6, max_gen_len=8, arch="decoder", d_model=32)
    )
    local = _fake_run(tmp / "local", mode="local")
    (local / "replay").mkdir()
    (local / "replay" / "shard-0.snap").write_bytes(b"tokenq-sealed-v1\n" + b"\0" * 40)
    empty = tmp / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    started = tmp / "started"
    started.mkdir()
    write_json(started / "config.json", load_config("reverse").to_dict())
    write_json(started / "run.json", {"mode": "serial", "config": "reverse"})
    (tmp / "prompts.txt").write_text("abcdef\nxyz!!\n")
    (tmp / "corpus.txt").write_text("\n\n")
    (tmp / "notjson").mkdir()
    (tmp / "notjson" / "config.json").write_text("{not json")
    serial = ["train", "--mode", "serial", "--run-dir", str(tmp / "new")]
    return {
        "truncated checkpoint": (["eval", "--run-dir", str(trunc)], "is corrupted or truncated"),
        "resume from truncated checkpoint": (["train", "--resume", str(trunc)], "is corrupted or truncated"),
        "checkpoint of another model shape": (["eval", "--run-dir", str(shape)], "does not fit this model"),
        "corrupted snapshot": (["train", "--resume", str(local)], "shard-0.snap is corrupted or truncated"),
        "run dir of another config": (
            ["train", "--mode", "serial", "--config", "copy", "--run-dir", str(run)],
            "belongs to a run of another config (task.name",
        ),
        "run dir already holding this run": (["train", "--mode", "serial", "--run-dir", str(run)], "--resume"),
        "resume without run.json": (["train", "--resume", str(empty)], "no readable run.json"),
        "resume before the first checkpoint": (["train", "--resume", str(started)], "no checkpoint to resume from"),
        "resume with --config": (["train", "--resume", str(run), "--config", "copy"], "not --config"),
        "resume in the other mode": (["train", "--resume", str(run), "--mode", "local"], "serial-mode run"),
        "resume changing the model": (["train", "--resume", str(run), "model.d_model=32"], "cannot change"),
        "resume a directory that is not a run": (["train", "--resume", str(tmp / "nowhere")], "not a tokenq run"),
        "unreadable run config": (["eval", "--run-dir", str(tmp / "notjson")], "cannot read"),
        "prompt outside the alphabet": (
            [*serial, f"task.eval_prompts_file={tmp / 'prompts.txt'}"],
            "prompts.txt",
        ),
        "missing prompt file": ([*serial, f"task.eval_prompts_file={tmp / 'none.txt'}"], "none.txt"),
        "empty corpus": (["pretrain", "--run-dir", str(tmp / "pt"), "--corpus", str(tmp / "corpus.txt")], "corpus"),
        "snapshot interval out of range": ([*serial, "replay.snapshot_every_s=-1"], "replay.snapshot_every_s"),
        "unknown key": ([*serial, "train.snapshot_every=3"], "unknown config key 'train.snapshot_every'"),
        "wrong type": ([*serial, "train.loss_log=sometimes"], "train.loss_log must be true or false"),
    }


def test_every_bad_input_gives_one_clear_sentence(tmp_path, capsys):
    cases = _bad_inputs(tmp_path)
    failures = []
    for name, (argv, fragment) in cases.items():
        code = main(argv)
        err = capsys.readouterr().err.strip()
        if code != 2 or fragment not in err or "\n" in err or "Traceback" in err:
            failures.append(f"{name}: exit {code}, stderr {err!r}")
    assert not failures, "\n".join(failures)


def test_the_cli_process_reports_a_corrupted_snapshot_without_a_traceback(tmp_path):
    local = _fake_run(tmp_path / "local", mode="local")
    (local / "replay").mkdir()
    (local / "replay" / "shard-0.snap").write_bytes(os.urandom(100))
    proc = run_cli("train", "--resume", str(local))
    assert proc.returncode == 2 and "shard-0.snap" in proc.stderr and "Traceback" not in proc.stderr
