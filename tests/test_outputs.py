"""What a run shows people: the Python API, TensorBoard tags and V/Q charts, `tokenq generate --json/--plot`."""

import json
import math
import struct

import numpy as np
import pytest
import torch
from procs import run_cli
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import tokenq
from tokenq.build import build_spec
from tokenq.cli import main
from tokenq.config import load_config
from tokenq.recorder import RunRecorder

TINY = ["train.total_updates=40", "train.eval_every=20", "replay.min_size_to_sample=32", "task.eval_prompts=4"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("tiny")
    summary = tokenq.train("tiny", run, mode="serial", overrides=TINY)
    return run, summary


def _events(run) -> EventAccumulator:
    acc = EventAccumulator(str(run / "tb"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_api_trains_and_loads_a_policy(tiny_run):
    run, summary = tiny_run
    assert summary["learner_updates"] == 40 and summary["mode"] == "serial"
    assert json.loads((run / "summary.json").read_text())["learner_updates"] == 40
    policy = tokenq.load(run)
    (out,) = policy.generate(["ab"])
    n = len(out["tokens"])
    assert 1 <= n <= 3 and all(len(out[k]) == n for k in ("values", "q_taken", "rewards", "token_ids"))
    # V(s_t) and Q(s_t, a_t) are those of one full forward pass of the loaded network over the generation.
    with torch.no_grad():
        q = policy.net(torch.tensor([[4, 5]]), torch.tensor([out["token_ids"][:-1]]))[0]  # (n, V)
    np.testing.assert_allclose(out["values"], q.max(-1).values.numpy(), atol=1e-5)
    np.testing.assert_allclose(out["q_taken"], q[torch.arange(n), out["token_ids"]].numpy(), atol=1e-5)
    assert out["values"] == pytest.approx([max(v, qt) for v, qt in zip(out["values"], out["q_taken"])])
    with pytest.raises(tokenq.api.ConfigError, match="already holds this run"):
        tokenq.train("tiny", run, mode="serial", overrides=TINY)


def test_tensorboard_holds_one_readable_chart_per_sample_prompt(tiny_run):
    run, _ = tiny_run
    acc = _events(run)
    tags = acc.Tags()["images"]
    assert [f"samples/values/{i}" for i in range(4)] == sorted(t for t in tags if t.startswith("samples/values/"))
    for i in range(4):
        image = acc.Images(f"samples/values/{i}")[-1]
        assert image.width >= 800 and image.height >= 400
        assert _png_size(image.encoded_image_string) == (image.width, image.height)
    scalars = acc.Tags()["scalars"]
    for tag in ("charts/success_rate", "losses/td_loss", "weights/version", "replay/samples_per_insert"):
        assert tag in scalars, tag
    assert not any(t.startswith("faults/actor_restarts") for t in scalars)  # local-mode only


def test_a_nonfinite_loss_reaches_tensorboard_and_the_progress_line(tmp_path, caplog):
    spec = build_spec(load_config("tiny", TINY))
    rec = RunRecorder(spec, tmp_path, "tiny", mode="serial")
    with caplog.at_level("INFO", logger="tokenq"):
        rec.progress(100, 7, {"td_loss": float("nan")}, lambda: {"weights_version": 5}, force=True)
        rec.progress(200, 8, {"td_loss": float("inf")}, lambda: {"weights_version": 5}, force=True)
    rec.writer.close()
    assert "td_loss      nan" in caplog.text and "td_loss      inf" in caplog.text
    losses = [e.value for e in _events(tmp_path).Scalars("losses/td_loss")]
    assert len(losses) == 2 and math.isnan(losses[0]) and losses[1] == math.inf
    with pytest.raises(KeyError):  # a scalar name that is not a documented tag is a programming error
        rec.progress(300, 9, {}, lambda: {"made_up": 1.0}, force=True)


def test_generate_prints_json_and_draws_the_chart(tiny_run, tmp_path, capsys):
    run, _ = tiny_run
    png = tmp_path / "values.png"
    proc = run_cli("generate", "--run-dir", str(run), "--prompt", "ba", "--json", "--plot", str(png))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["prompt"] == "ba" and len(out["values"]) == len(out["q_taken"]) == len(out["tokens"]) >= 1
    width, height = _png_size(png.read_bytes())
    assert width >= 800 and height >= 400
    assert main(["generate", "--run-dir", str(run), "--prompt", "aba"]) == 2  # in-process: the same code path
    assert "takes 2" in capsys.readouterr().err
