"""`tokenq bench` and scripts/gpu_bench.py: the analytic FLOP count by hand and against FlopCounterMode, goal
arithmetic, the cheap figures, and the GPU script on CPU (and on CUDA where there is one). No Ray runs here."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from learner.learner import Learner, LearnerConfig
from learner.model import QNetConfig
from tokenq.bench import (
    bench_learners,
    bench_matmul,
    bench_rollout,
    counted_update_flops,
    forward_flops,
    full_batch,
    goals,
    update_flops,
)

REPO = Path(__file__).resolve().parents[1]
GPU_SCRIPT = REPO / "scripts" / "gpu_bench.py"


def test_forward_flops_by_hand():
    # d=8, f=4, V=10, P=2, T=3. A block token costs (8 + 4f) d^2 = 1536; the head 2 d V = 160 per position.
    decoder = QNetConfig(vocab_size=10, d_model=8, n_heads=2, n_layers=1, arch="decoder")
    # L = 5 tokens: 5 * 1536 + attention 4 * 5^2 * 8 = 800, head 3 * 160 = 480.
    assert forward_flops(decoder, 1, 2, 3) == 7680 + 800 + 480
    encdec = QNetConfig(vocab_size=10, d_model=8, n_heads=2, n_layers=1, n_enc_layers=1, arch="encdec")
    # encoder: 2 * 1536 + 4 * 2^2 * 8 = 3200; decoder: 3 * (1536 + 4 * 64) + 4 * 3^2 * 8 + 4 * 2 * 64 + 4 * 3 * 2 * 8
    # = 5376 + 288 + 512 + 192 = 6368; head 480.
    assert forward_flops(encdec, 1, 2, 3) == 3200 + 6368 + 480
    assert update_flops(encdec, 5, 2, 3) == 4 * 5 * (3200 + 6368 + 480)


@pytest.mark.parametrize("arch", ["encdec", "decoder"])
def test_analytic_flops_match_flop_counter(arch):
    cfg = QNetConfig(vocab_size=50, d_model=32, n_heads=4, n_layers=2, n_enc_layers=2, arch=arch, dueling=True)
    learner = Learner(LearnerConfig(device="cpu"), cfg)
    batch = full_batch(4, 5, 7, cfg.vocab_size, np.random.default_rng(0))
    analytic, counted = update_flops(cfg, 4, 5, 7), counted_update_flops(learner, batch)
    # The counter also counts the attention scores the backward pass recomputes (flash attention), which are not
    # model FLOPs: it may only be above the analytic count, and by little.
    assert analytic <= counted <= 1.10 * analytic


def test_goals_compare_ratios_and_figures_with_their_targets():
    figures = {
        "rollout.tokens_per_s_kv": 600.0,
        "rollout.tokens_per_s_naive": 100.0,  # 6x >= 5: pass
        "weights.publish_to_actor_s": 1.5,  # > 1 s: fail
        "replay.insert_transitions_per_s": 150_000.0,  # < 200,000: fail
    }
    out = goals(figures)
    assert out["goals.kv_over_naive.value"] == 6.0 and out["goals.kv_over_naive.pass"] is True
    assert out["goals.publish_to_actor_s.pass"] is False and out["goals.publish_to_actor_s.target"] == 1.0
    assert out["goals.replay_insert.pass"] is False
    assert "goals.two_over_one_actor.value" not in out  # its figures were not measured


def test_cheap_figures_are_present_and_positive():
    figures = {**bench_matmul(1, sizes=(256,)), **bench_rollout(1, batch=4, steps=8), **bench_learners(1)}
    required = [
        "machine.matmul_gflops",
        "rollout.tokens_per_s_kv",
        "rollout.tokens_per_s_naive",
        *(
            f"learner.{preset}{name}"
            for preset in ("", "article.")
            for name in ("transitions_per_s_sequence", "transitions_per_s_per_transition", "achieved_gflops")
        ),
    ]
    for key in required:
        assert math.isfinite(figures[key]) and figures[key] > 0, key
    # The article's update: 4 forward passes of 32 episodes, 8 prompt and 16 generated tokens.
    assert figures["learner.article.flops_per_update"] == update_flops(
        QNetConfig(vocab_size=10_000, d_model=256, n_heads=8, n_layers=6, n_enc_layers=6, arch="encdec"), 32, 8, 16
    )


def test_bench_module_imports_neither_ray_nor_yaml():
    code = "import sys, tokenq.bench; print(sorted({'ray', 'yaml'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _run_gpu_script(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "gpu.json"
    subprocess.run([sys.executable, str(GPU_SCRIPT), "--out", str(out), *args], check=True, timeout=600)
    return json.loads(out.read_text())


def _check_gpu_figures(figures: dict, shapes: tuple[str, ...]) -> None:
    for shape in shapes:
        for name in ("updates_per_s", "transitions_per_s", "flops_per_update", "achieved_tflops", "mfu"):
            value = figures[f"{shape}.{name}"]
            assert math.isfinite(value) and value > 0, f"{shape}.{name}"


def test_gpu_script_runs_tiny_on_cpu(tmp_path):
    figures = _run_gpu_script(tmp_path, "--device", "cpu", "--tiny")
    assert figures["device"] == "cpu" and figures["peak_tflops"] == 790.0
    _check_gpu_figures(figures, ("article", "large"))


@pytest.mark.gpu
def test_gpu_script_on_cuda(tmp_path):
    figures = _run_gpu_script(tmp_path, "--warmup", "2", "--updates", "5", "--seconds", "10")
    _check_gpu_figures(figures, ("article", "article_b512", "large"))
    assert figures["large.mfu"] < 1
