"""`tokenq bench` (tokenq/bench/) and scripts/gpu_bench.py: the analytic FLOP count by hand and against
FlopCounterMode, goal arithmetic, and the GPU script on CPU (and on CUDA where there is one). No Ray runs here."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from gpu_figures import (
    GPU_SCRIPT,
    TINY_GPU_SHAPES,
    TINY_HF_SHAPES,
    check_gpu_figures,
    check_tiny_cpu_figures,
    hand_parameters,
)

from learner.learner import Learner, LearnerConfig
from learner.model import QNetConfig
from tokenq.bench.common import counted_update_flops, forward_flops, full_batch, run_spec, update_flops
from tokenq.bench.core import bench_learners, goals

REPO = Path(__file__).resolve().parents[1]


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
    cfg = QNetConfig(vocab_size=50, d_model=32, n_heads=4, n_layers=2, n_enc_layers=2, arch=arch, q_head="dueling")
    learner = Learner(LearnerConfig(device="cpu"), cfg)
    batch = full_batch(4, 5, 7, cfg.vocab_size, np.random.default_rng(0))
    analytic, counted = update_flops(cfg, 4, 5, 7), counted_update_flops(learner, batch)
    # The counter also counts the attention scores the backward pass recomputes (flash attention), 2 Tq Tk d per
    # attention and episode, which are not model FLOPs. B=4, d=32, P=5, T=7 (decoder: L=12), 2 layers of each kind.
    attentions = 2 * (5 * 5) + 2 * (7 * 7 + 7 * 5) if arch == "encdec" else 2 * 12 * 12
    assert counted == analytic + 4 * 2 * 32 * attentions


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


# Analytic FLOPs of the updates bench_learners times, by hand (tokenq/bench/core.py's docstring), 32 episodes each.
# `reverse` (the preset's defaults): decoder, V=12, d=64, f=4, 2 layers, P=6, T=8, so L=14:
REVERSE_FLOPS = 4 * 32 * (2 * (14 * 24 * 64**2 + 4 * 14**2 * 64) + 8 * 2 * 64 * 12)  # 366,739,456
# The article's network: encdec, V=10000, d=256, f=4, 6 + 6 layers, P=8, T=16 (a decoder token's block is 28 d^2
# with cross-attention's q and proj):
ARTICLE_EPISODE = (
    6 * (8 * 24 * 256**2 + 4 * 8**2 * 256)  # encoder
    + 6 * (16 * 28 * 256**2 + 4 * 16**2 * 256 + 4 * 8 * 256**2 + 4 * 16 * 8 * 256)  # decoder
    + 16 * 2 * 256 * 10_000  # head
)
ARTICLE_FLOPS = 4 * 32 * ARTICLE_EPISODE  # 44,660,948,992
# FlopCounterMode adds the attention scores the backward pass recomputes: 2 Tq Tk d per attention per episode.
REVERSE_RECOMPUTED = 32 * 2 * 64 * 2 * 14**2  # 1,605,632
ARTICLE_RECOMPUTED = 32 * 2 * 256 * (6 * 8**2 + 6 * (16**2 + 16 * 8))  # 44,040,192


@pytest.mark.slow  # builds and runs the article's network: seconds
def test_learner_figures_count_the_hand_counted_flops():
    """The FLOPs bench_learners reports for each update, by hand and against FlopCounterMode's count of the same
    update. (Its rates divide these by timed seconds: a timing is a measurement, not a behaviour to test.)"""
    spec = run_spec("reverse")
    net, task = spec.net_cfg, spec.task
    # The shape REVERSE_FLOPS is counted for: a change to the preset must change the hand count too.
    shape = (net.arch, net.vocab_size, net.d_model, net.mlp_ratio, net.n_layers, task.prompt_len, task.max_steps)
    assert shape == ("decoder", 12, 64, 4, 2, 6, 8)
    figures = bench_learners(1)
    for prefix, flops, recomputed in [
        ("learner", REVERSE_FLOPS, REVERSE_RECOMPUTED),
        ("learner.article", ARTICLE_FLOPS, ARTICLE_RECOMPUTED),
    ]:
        assert figures[f"{prefix}.flops_per_update"] == flops
        assert figures[f"{prefix}.flops_per_update_counted"] == flops + recomputed


def test_gpu_script_imports_only_the_standard_library_torch_numpy_and_its_own_modules():
    # What the script loads beyond what torch and numpy load themselves. This environment has Ray, msgpack, PyYAML,
    # TensorBoard and matplotlib installed, so a module-level import of any of them shows here.
    code = (
        "import runpy, sys, numpy, torch, torch.utils.flop_counter\n"
        "before = {m.split('.')[0] for m in sys.modules}\n"
        "runpy.run_path(sys.argv[1], run_name='gpu_bench')\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} - before - set(sys.stdlib_module_names))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(GPU_SCRIPT)], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert set(out.stdout.split()) <= {"learner", "replay", "tokenq"}, out.stdout


def _run_gpu_script(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "gpu.json"
    subprocess.run([sys.executable, str(GPU_SCRIPT), "--out", str(out), *args], check=True, timeout=600)
    return json.loads(out.read_text())


# The full shapes: `article` is ARTICLE_FLOPS's update (B=32), `article_b512` the same at B=512; `large`: decoder,
# V=32000, d=768, f=4, 12 layers, P=64, T=192 (L=256), B=64.
GPU_SHAPES = {
    "article": {
        "batch": 32,
        "steps": 16,
        "flops": ARTICLE_FLOPS,
        "recomputed": ARTICLE_RECOMPUTED,
        "parameters": hand_parameters(256, 10_000, 8 + 17, 12, 6, 2),  # 16,196,624
    },
    "article_b512": {
        "batch": 512,
        "steps": 16,
        "flops": 16 * ARTICLE_FLOPS,  # 714,575,183,872
        "recomputed": 16 * ARTICLE_RECOMPUTED,
        "parameters": hand_parameters(256, 10_000, 8 + 17, 12, 6, 2),
    },
    "large": {
        "batch": 64,
        "steps": 192,
        "flops": 4 * 64 * (12 * (256 * 24 * 768**2 + 4 * 256**2 * 768) + 192 * 2 * 768 * 32_000),  # 14.17e12
        "recomputed": 64 * 2 * 768 * 12 * 256**2,  # 77,309,411,328
        "parameters": hand_parameters(768, 32_000, 64 + 192 + 1, 12, 0, 1),  # 134,437,376
    },
}


def test_gpu_script_runs_tiny_on_cpu(tmp_path):
    """The Hugging Face shapes are left to the slow test below (importing transformers and peft takes seconds)."""
    figures = _run_gpu_script(tmp_path, "--device", "cpu", "--tiny", "--no-hf")
    check_tiny_cpu_figures(figures, torch.__version__, hf_skipped="--no-hf")


@pytest.mark.slow
def test_gpu_script_measures_mfu_against_the_peak_it_is_given(tmp_path):
    figures = _run_gpu_script(tmp_path, "--device", "cpu", "--tiny", "--peak-tflops", "0.5")
    assert figures["peak_tflops"] == 0.5
    check_gpu_figures(figures, TINY_GPU_SHAPES, 0.5, cuda=False, hf_shapes=TINY_HF_SHAPES)


@pytest.mark.gpu
def test_gpu_script_on_cuda(tmp_path):
    from tokenq.bench.hf import HF_SHAPES

    figures = _run_gpu_script(tmp_path, "--warmup", "2", "--updates", "5", "--seconds", "10")
    assert figures["device"] == torch.cuda.get_device_name() and figures["peak_tflops"] == 790.0
    # SmolLM2-135M: 134,515,008 parameters and a V head of 577, LoRA rank 16 adds 16 * 10,176 per layer (30 layers);
    # the 1B Llama: 1,235,814,400 and 2,049, LoRA adds 16 * 44,032 per layer (16 layers).
    params = {"smollm2": (134_515_008, 577, 30 * 16 * 10_176), "llama1b": (1_235_814_400, 2_049, 16 * 16 * 44_032)}
    # Full fine-tuning by hand, 4 F (tokenq/bench/hf.py's docstring), S = 48 + 32 - 1 = 79 tokens, T = 32 scored:
    # SmolLM2: d=576, I=1536, 30 layers, d_kv=192 (3 of 9 heads), V=49,152, B=128; projections per layer and token
    # 2 * 576**2 + 2 * 576 * 192 + 3 * 576 * 1536 = 3,538,944 multiply-adds. The 1B Llama: d=2048, I=8192, 16 layers,
    # d_kv=512, V=128,256, B=64; 2 * 2048**2 + 2 * 2048 * 512 + 3 * 2048 * 8192 = 60,817,408.
    full = {
        "smollm2": 4 * 128 * (2 * 30 * 3_538_944 * 79 + 4 * 30 * 79**2 * 576 + 2 * (576 * 49_152 + 576) * 32),
        "llama1b": 4 * 64 * (2 * 16 * 60_817_408 * 79 + 4 * 16 * 79**2 * 2048 + 2 * (2048 * 128_256 + 2048) * 32),
    }
    # The attention scores FlopCounterMode also counts as recomputed in the backward: 2 S^2 d per layer per episode.
    recomputed = {"smollm2": 128 * 2 * 30 * 79**2 * 576, "llama1b": 64 * 2 * 16 * 79**2 * 2048}
    # The trunk shapes train the top 2 blocks after a 32-token prefix: 47 of the 79 tokens are computed, and the top's
    # backward recomputes its attention scores (the prefix's through its bottom block). A block holds the projections
    # and two norms: SmolLM2 3,538,944 + 2 * 576, the 1B Llama 60,817,408 + 2 * 2048.
    trunk_recomputed = {
        "smollm2": 128 * 2 * 2 * 47 * 79 * 576 + 2 * 32**2 * 576,
        "llama1b": 64 * 2 * 2 * 47 * 79 * 2048 + 2 * 32**2 * 2048,
    }
    block = {"smollm2": 3_538_944 + 2 * 576, "llama1b": 60_817_408 + 2 * 2048}
    hf_shapes = {}
    for shape in HF_SHAPES:
        model, mode = shape.name.split("_")
        base, v_head, adapters = params[model]
        lora = mode == "lora"
        hf_shapes[shape.name] = {
            "batch": shape.batch,
            "steps": shape.steps,
            "prompt_len": shape.prompt_len,
            "flops": None if lora else full[model],
            "recomputed": recomputed[model],
            "parameters": base + v_head + (adapters if lora else 0),
            "trainable": adapters + v_head if lora else base + v_head,
            "sent": adapters + v_head if lora else base + v_head + shape.hidden * shape.vocab,
        }
        if mode == "trunk":  # the online and the reference top: 2 blocks and a final norm each
            top = 2 * block[model] + shape.hidden
            hf_shapes[shape.name].update(
                flops=None,
                recomputed=trunk_recomputed[model],
                parameters=base + v_head + 2 * top,
                trainable=top + v_head,
            )
            del hf_shapes[shape.name]["sent"]
    check_gpu_figures(figures, GPU_SHAPES, 790.0, cuda=True, hf_shapes=hf_shapes)
    for name in GPU_SHAPES:
        assert 1 <= figures[f"{name}.timed_updates"] <= 5
    assert figures["large.mfu"] < 1
