"""scripts/gpu_bench.py's figures against hand counts: its `--tiny` shapes and the checks of its JSON output, for the
tests that run the script (tests/test_gpu_script_env.py runs it in a venv of PyTorch and NumPy alone)."""

import math
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GPU_SCRIPT = REPO / "scripts" / "gpu_bench.py"


def hand_parameters(d: int, vocab: int, positions: int, blocks: int, cross_attentions: int, final_norms: int) -> int:
    """QNetwork's parameters by hand: token embedding, position embeddings, blocks (attention q, kv, proj: 4 d^2 + 4 d;
    MLP: 8 d^2 + 5 d; two layer norms of 2 d), cross-attentions with their norm, final norms, head (d V + V)."""
    attention, mlp, norm = 4 * d * d + 4 * d, 8 * d * d + 5 * d, 2 * d
    return (
        vocab * d
        + positions * d
        + blocks * (attention + mlp + 2 * norm)
        + cross_attentions * (attention + norm)
        + final_norms * norm
        + d * vocab
        + vocab
    )


# scripts/gpu_bench.py's shapes by hand: episodes per update, steps per episode, analytic FLOPs per update (4 B F,
# tokenq/bench/core.py's docstring), the attention scores FlopCounterMode also counts as recomputed in the backward pass
# (2 Tq Tk d per attention per episode), and parameters.
# --tiny `article`: encdec, V=64, d=32, f=4, 1 + 1 layers, P=4, T=6, B=4 (a decoder token's block is 28 d^2).
TINY_ARTICLE_EPISODE = (
    1 * (4 * 24 * 32**2 + 4 * 4**2 * 32)  # encoder: 100,352
    + 1 * (6 * 28 * 32**2 + 4 * 6**2 * 32 + 4 * 4 * 32**2 + 4 * 6 * 4 * 32)  # decoder: 196,096
    + 6 * 2 * 32 * 64  # head: 24,576
)
TINY_GPU_SHAPES = {
    "article": {
        "batch": 4,
        "steps": 6,
        "flops": 4 * 4 * TINY_ARTICLE_EPISODE,  # 5,136,384
        "recomputed": 4 * 2 * 32 * (4 * 4 + 6 * 6 + 6 * 4),  # 19,456
        "parameters": hand_parameters(32, 64, 4 + 7, 2, 1, 2),  # 34,336
    },
    # --tiny `large`: decoder, V=64, d=32, f=4, 2 layers, P=4, T=8 (L=12), B=4.
    "large": {
        "batch": 4,
        "steps": 8,
        "flops": 4 * 4 * (2 * (12 * 24 * 32**2 + 4 * 12**2 * 32) + 8 * 2 * 32 * 64),  # 10,551,296
        "recomputed": 4 * 2 * 32 * 2 * 12**2,  # 73,728
        "parameters": hand_parameters(32, 64, 4 + 8 + 1, 2, 0, 1),  # 30,048
    },
}


# --tiny Hugging Face shapes: a tied Llama, d=32, I=64, 2 layers, 4 heads, 2 KV heads (d_kv=16), V=128, P=4, T=6 (the
# sequence holds S = P + T - 1 = 9 tokens), B=4; LoRA rank 4 on q, k, v, o, gate, up, down.
# Forward per episode: projections 2 * 2 * (2 * 32**2 + 2 * 32 * 16 + 3 * 32 * 64) * 9 = 331,776; attention
# 2 * 4 * 9**2 * 32 = 20,736; LM and V heads 2 * (32 * 128 + 32) * 6 = 49,536: F = 4 * 402,048 = 1,608,192.
TINY_HF_FORWARD = 4 * (331_776 + 20_736 + 49_536)
TINY_HF_SHAPES = {
    "hf_full": {
        "batch": 4,
        "steps": 6,
        "prompt_len": 4,
        "flops": 4 * TINY_HF_FORWARD,  # 6,432,768
        "recomputed": 4 * 2 * 2 * 9**2 * 32,  # 41,472
        # embeddings 4,096 (tied) + 2 layers of 9,280 + final norm 32 + V head 33
        "parameters": 22_721,
        "trainable": 22_721,
        "sent": 22_721 + 4_096,
    },
    "hf_lora": {
        "batch": 4,
        "steps": 6,
        "prompt_len": 4,
        # 2 F (online and target forward) + input gradients (projections, attention twice, LM head, V head's two
        # products, less the first layer's q, k, v: 9 * (2 * (32**2 + 2 * 32 * 16) + 3 * 2 * 4 * 32) = 43,776)
        # + 4 x adapters (2 * 4 * (4 * 32 + 2 * 48 + 3 * 96) = 4,096 per layer and token)
        "flops": 2 * TINY_HF_FORWARD
        + 4 * (331_776 + 2 * 20_736 + 2 * 32 * 128 * 6 + 4 * 32 * 6 - 43_776)
        + 4 * 4 * 2 * 9 * 4_096,  # 5,913,600
        "recomputed": 4 * 2 * 2 * 9**2 * 32,
        "parameters": 22_721 + 2 * 2_048,  # adapters: 4 * (64 + 48 + 48 + 64 + 96 + 96 + 96) per layer
        "trainable": 2 * 2_048 + 33,  # adapters and the V head
    },
    # hf.train_layers=1 on a 2-token shared prefix: the trunk is block 0, the top block 1; C = 9 - 2 = 7 tokens are
    # computed per episode, each attending to 9. Per block and episode: projections 2 * 9,216 * 7 = 129,024 and
    # attention 4 * 7 * 9 * 32 = 8,064, so trunk and top forward are 4 * 137,088 = 548,352 each. The prefix through
    # the top at batch 1: 2 * 9,216 * 2 + 4 * 2 * 2 * 32 = 37,376 per forward (online and target), and its backward
    # the top block's key and value projections alone, 8 * 32 * 16 * 2 = 8,192 (its output is read only as keys and
    # values). Heads: 4 * 49,536 = 198,144 per forward; the online backward takes the LM head's input gradient and
    # the V head's two products, 4 * (2 * 32 * 128 * 6 + 4 * 32 * 6) = 199,680. Trunk once, top 4 x (forward, two
    # backward products, target), prefix twice plus its backward, heads twice plus their backward.
    "hf_trunk": {
        "batch": 4,
        "steps": 6,
        "prompt_len": 4,
        "flops": 548_352 + 4 * 548_352 + 2 * 37_376 + 8_192 + 2 * 198_144 + 199_680,  # 3,420,672
        "recomputed": 4 * 2 * 7 * 9 * 32,  # the top's attention scores, 16,128
        "parameters": 22_721 + 2 * (9_280 + 32),  # the online and the reference top: a block and a norm each
        "trainable": 9_280 + 32 + 33,  # the online top and the V head
    },
}
HF_KEYS = (
    "updates_per_s",
    "tokens_per_s",
    "transitions_per_s",
    "flops_per_update",
    "flops_per_update_counted",
    "achieved_tflops",
    "mfu_measured",
    "mfu_datasheet",
    "batch",
    "parameters",
    "trainable_parameters",
    "weights_mb_per_publish",
    "timed_updates",
)


def check_hf_figures(figures: dict, shapes: dict, cuda: bool) -> set:
    """The Hugging Face shapes' figures against the hand counts; returns their keys."""
    measured, datasheet = figures["measured_peak_tflops"], figures["datasheet_tflops"]
    assert math.isfinite(measured) and measured > 0 and datasheet == 989.0
    for name, shape in shapes.items():
        f = {key.removeprefix(f"{name}."): value for key, value in figures.items() if key.startswith(f"{name}.")}
        assert math.isfinite(f["updates_per_s"]) and f["updates_per_s"] > 0, name
        flops = shape["flops"]
        if flops is None:  # no hand count: the analytic figure within FlopCounterMode's bracket
            flops = f["flops_per_update"]
            assert f["flops_per_update_counted"] - shape["recomputed"] <= flops <= f["flops_per_update_counted"], name
        assert f["batch"] == shape["batch"] and f["flops_per_update"] == flops, name
        assert f["parameters"] == shape["parameters"] and f["trainable_parameters"] == shape["trainable"], name
        if not cuda:
            assert f["flops_per_update_counted"] == flops + shape["recomputed"], name
        # what one publication sends: the state dict as float32 numpy arrays (a tied LM head a second time)
        sent = shape.get("sent", shape["trainable"])
        assert 1e6 * f["weights_mb_per_publish"] == pytest.approx(4 * sent, rel=1e-12), name
        achieved = flops * f["updates_per_s"] / 1e12
        assert f["achieved_tflops"] == pytest.approx(achieved, rel=1e-12), name
        assert f["mfu_measured"] == pytest.approx(achieved / measured, rel=1e-12), name
        assert f["mfu_datasheet"] == pytest.approx(achieved / datasheet, rel=1e-12), name
        assert f["transitions_per_s"] == pytest.approx(f["updates_per_s"] * shape["batch"] * shape["steps"]), name
        sequence = shape["prompt_len"] + shape["steps"] - 1
        assert f["tokens_per_s"] == pytest.approx(f["updates_per_s"] * shape["batch"] * sequence), name
    keys = HF_KEYS + (("max_memory_gb",) if cuda else ())
    return {"measured_peak_tflops", "datasheet_tflops"} | {f"{n}.{k}" for n in shapes for k in keys}


def check_gpu_figures(
    figures: dict, shapes: dict, peak_tflops: float, cuda: bool, hf_shapes: dict | None = None
) -> None:
    """The script's figures against the hand counts; the timings (updates/s) only finite and positive, and every
    rate tied to them."""
    for name, shape in shapes.items():
        f = {key.removeprefix(f"{name}."): value for key, value in figures.items() if key.startswith(f"{name}.")}
        assert math.isfinite(f["updates_per_s"]) and f["updates_per_s"] > 0, name
        assert f["batch"] == shape["batch"] and f["parameters"] == shape["parameters"], name
        assert f["flops_per_update"] == shape["flops"], name
        if cuda:  # attention's kernel is chosen at run time: the math path's backward recomputes no scores
            assert shape["flops"] <= f["flops_per_update_counted"] <= shape["flops"] + shape["recomputed"], name
            assert math.isfinite(f["max_memory_gb"]) and 0 < f["max_memory_gb"] < 200, name
        else:
            assert f["flops_per_update_counted"] == shape["flops"] + shape["recomputed"], name
            assert "max_memory_gb" not in f, name
        # An update trains on batch * steps transitions.
        transitions = shape["batch"] * shape["steps"]
        assert f["transitions_per_s"] == pytest.approx(f["updates_per_s"] * transitions, rel=1e-12), name
        achieved = shape["flops"] * f["updates_per_s"] / 1e12
        assert f["achieved_tflops"] == pytest.approx(achieved, rel=1e-12), name
        assert f["mfu"] == pytest.approx(achieved / peak_tflops, rel=1e-12), name
    hf = check_hf_figures(figures, hf_shapes, cuda) if hf_shapes else {"hf_skipped"}
    assert set(figures) == {"device", "peak_tflops", "torch"} | hf | {
        f"{name}.{key}"
        for name in shapes
        for key in (
            "updates_per_s",
            "transitions_per_s",
            "flops_per_update",
            "flops_per_update_counted",
            "achieved_tflops",
            "mfu",
            "batch",
            "parameters",
            "timed_updates",
            *(["max_memory_gb"] if cuda else []),
        )
    }


def check_tiny_cpu_figures(figures: dict, torch_version: str, hf_skipped: str = "") -> None:
    """`--device cpu --tiny` with the default peak: tiny shapes, one untimed and three timed updates each; with
    `hf_skipped` the Hugging Face shapes are skipped and their reason says so."""
    assert figures["device"] == "cpu" and figures["peak_tflops"] == 790.0 and figures["torch"] == torch_version
    hf_shapes = None if hf_skipped else TINY_HF_SHAPES
    check_gpu_figures(figures, TINY_GPU_SHAPES, 790.0, cuda=False, hf_shapes=hf_shapes)
    if hf_skipped:
        assert hf_skipped in figures["hf_skipped"]
    assert figures["article.timed_updates"] == figures["large.timed_updates"] == 3
