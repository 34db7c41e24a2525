"""Learner updates/s and model FLOP utilisation on a GPU: `python scripts/gpu_bench.py --out gpu.json` runs this.

Times `learner.learner.Learner.update` (bf16 autocast on CUDA, fused AdamW) on synthetic full-length batches for
- `article`: the article's network (vocab 10000, d_model 256, 8 heads, 6 + 6 layers, encdec), 8-token prompts,
  16-token episodes, batch 32 as in the article; `article_b512` is the same network at batch 512, to fill the GPU;
- `large`: a decoder of 12 layers, d_model 768, 12 heads, vocab 32000, sequences of 256 tokens (64 prompt + 192
  generated), batch 64.
FLOPs per update are tokenq/bench/common.py's analytic count (`update_flops`: four forward passes' matmuls, attention
counted as the full square); the FlopCounterMode count of one update is reported beside it. MFU = achieved FLOP/s /
peak. The default peak is 790 TFLOP/s, the H200 figure the project is measured against (the H100/H200 datasheet's
dense bf16 figure is 989 TFLOP/s); `--peak-tflops` overrides it.

Keys: `NAME.updates_per_s`, `.transitions_per_s`, `.flops_per_update`, `.flops_per_update_counted`,
`.achieved_tflops`, `.mfu`, `.batch`, `.parameters`, `.max_memory_gb`, plus `device` and `peak_tflops`.
`--device cpu --tiny` runs tiny shapes for a few updates, so the script is tested without a GPU.

Needs only PyTorch (a CUDA build for `--device cuda`) and NumPy, and this repository's source tree, which
scripts/gpu_bench.py puts on sys.path: nothing installed from the repository, no Ray, msgpack, PyYAML, TensorBoard
or matplotlib. It imports learner/ (torch, numpy), replay/episodes.py (numpy) and tokenq/bench/common.py, whose
module level needs nothing more; tests/test_gpu_script_env.py runs it in a fresh venv holding only torch and numpy.

Hugging Face shapes (tokenq/bench/hf.py), when `transformers` is installed (LoRA shapes also need `peft`; without
them the shapes are skipped and `hf_skipped` says why): SmolLM2-135M and a 1B Llama (Llama-3.2-1B's shape) built
from their configs, each trained in full (`*_full`) and with rank-16 LoRA on every linear layer (`*_lora`), on
48-token prompts and 32-token episodes. Their FLOPs are `hf_update_flops` (LoRA's backward skips the base's weight
gradients). Every shape also reports MFU against the peak measured on the same device (`measured_peak_tflops`: a
large bf16 matmul; fp32 on the CPU) as `.mfu_measured`, and against the datasheet's dense bf16 figure
(`--datasheet-tflops`, 989 for an H100/H200) as `.mfu_datasheet`; `.trainable_parameters` and `.weights_mb_per_publish`
show what LoRA saves.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from learner.learner import Learner, LearnerConfig
from learner.model import QNetConfig
from tokenq.bench.common import (
    ARTICLE_CFG,
    ARTICLE_PROMPT_LEN,
    ARTICLE_STEPS,
    counted_update_flops,
    full_batch,
    print_table,
    update_flops,
)

log = logging.getLogger("gpu_bench")

DEFAULT_PEAK_TFLOPS = 790.0
DATASHEET_TFLOPS = 989.0  # H100/H200 SXM dense bf16


@dataclass
class Shape:
    name: str
    net: QNetConfig
    prompt_len: int
    steps: int  # tokens generated per episode
    batch: int  # episodes per update


LARGE_CFG = QNetConfig(
    vocab_size=32_000, d_model=768, n_heads=12, n_layers=12, arch="decoder", max_prompt_len=64, max_gen_len=192
)
SHAPES = [
    Shape("article", ARTICLE_CFG, ARTICLE_PROMPT_LEN, ARTICLE_STEPS, 32),
    Shape("article_b512", ARTICLE_CFG, ARTICLE_PROMPT_LEN, ARTICLE_STEPS, 512),
    Shape("large", LARGE_CFG, 64, 192, 64),
]
TINY_ENCDEC = QNetConfig(
    vocab_size=64, d_model=32, n_heads=4, n_layers=1, n_enc_layers=1, arch="encdec", max_prompt_len=4, max_gen_len=6
)
TINY_DECODER = QNetConfig(
    vocab_size=64, d_model=32, n_heads=4, n_layers=2, arch="decoder", max_prompt_len=4, max_gen_len=8
)
TINY_SHAPES = [Shape("article", TINY_ENCDEC, 4, 6, 4), Shape("large", TINY_DECODER, 4, 8, 4)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_updates(learner: Learner, batch, warmup: int, max_updates: int, max_seconds: float) -> tuple[float, int]:
    """(seconds per update, updates timed) over up to `max_updates` updates after `warmup` untimed ones (at least
    one; stops after `max_seconds`). Peak GPU memory counts from the first timed update."""
    dev = learner.device
    for _ in range(warmup):
        learner.update(batch)
    _sync(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    done, t0 = 0, time.perf_counter()
    while done < max_updates and (done == 0 or time.perf_counter() - t0 < max_seconds):
        learner.update(batch)
        done += 1
    _sync(dev)
    return (time.perf_counter() - t0) / done, done


def measure(shape: Shape, device: str, warmup: int, max_updates: int, max_seconds: float, peak_flops: float) -> dict:
    """Updates/s over up to `max_updates` timed updates (at least one; stops after `max_seconds`)."""
    learner = Learner(LearnerConfig(n_step=1, device=device), shape.net)
    batch = full_batch(shape.batch, shape.prompt_len, shape.steps, shape.net.vocab_size, np.random.default_rng(0))
    seconds, done = timed_updates(learner, batch, warmup, max_updates, max_seconds)
    flops = update_flops(shape.net, shape.batch, shape.prompt_len, shape.steps)
    p = shape.name
    out = {
        f"{p}.updates_per_s": 1 / seconds,
        f"{p}.transitions_per_s": shape.batch * shape.steps / seconds,
        f"{p}.flops_per_update": flops,
        f"{p}.flops_per_update_counted": counted_update_flops(learner, batch),
        f"{p}.achieved_tflops": flops / seconds / 1e12,
        f"{p}.mfu": flops / seconds / peak_flops,
        f"{p}.batch": shape.batch,
        f"{p}.parameters": learner.online.num_parameters(),
        f"{p}.timed_updates": done,
    }
    if learner.device.type == "cuda":
        out[f"{p}.max_memory_gb"] = torch.cuda.max_memory_allocated(learner.device) / 1e9
    log.info("%s: %.1f updates/s, %.1f TFLOP/s, MFU %.3f", p, 1 / seconds, flops / seconds / 1e12, out[f"{p}.mfu"])
    return out


def measured_peak_tflops(device: str, tiny: bool) -> float:
    """The best TFLOP/s of a large square matmul on this device (bf16 on CUDA, fp32 on the CPU): the peak MFU is
    also measured against, so that it is not only guessed from a datasheet."""
    dev = torch.device(device)
    n = 512 if tiny else 8192
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    best = float("inf")
    for _ in range(3 if tiny else 10):
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(2 if tiny else 20):
            a @ b
        _sync(dev)
        best = min(best, (time.perf_counter() - t0) / (2 if tiny else 20))
    return 2 * n**3 / best / 1e12


def measure_hf(shape, device: str, warmup: int, max_updates: int, max_seconds: float, peaks: dict) -> dict:
    """One Hugging Face shape: updates/s, tokens/s and MFU (tokenq/bench/hf.py builds the network and counts FLOPs)."""
    from distributed.codec import weights_arrays, weights_nbytes
    from tokenq.bench.hf import hf_network, hf_update_flops, shape_batch

    learner = Learner(LearnerConfig(n_step=1, device=device), None, net=hf_network(shape))
    batch = shape_batch(shape, np.random.default_rng(0))
    seconds, done = timed_updates(learner, batch, warmup, max_updates, max_seconds)
    flops = hf_update_flops(shape)
    achieved = flops / seconds
    p = shape.name
    out = {
        f"{p}.updates_per_s": 1 / seconds,
        f"{p}.tokens_per_s": shape.batch * (shape.prompt_len + shape.steps - 1) / seconds,
        f"{p}.transitions_per_s": shape.batch * shape.steps / seconds,
        f"{p}.flops_per_update": flops,
        f"{p}.flops_per_update_counted": counted_update_flops(learner, batch),
        f"{p}.achieved_tflops": achieved / 1e12,
        f"{p}.mfu_measured": achieved / (peaks["measured"] * 1e12),
        f"{p}.mfu_datasheet": achieved / (peaks["datasheet"] * 1e12),
        f"{p}.batch": shape.batch,
        f"{p}.parameters": learner.online.num_parameters(),
        f"{p}.trainable_parameters": learner.trainable_parameters(),
        f"{p}.weights_mb_per_publish": weights_nbytes(weights_arrays(learner.get_weights())) / 1e6,
        f"{p}.timed_updates": done,
    }
    if learner.device.type == "cuda":
        out[f"{p}.max_memory_gb"] = torch.cuda.max_memory_allocated(learner.device) / 1e9
    log.info(
        "%s: %.2f updates/s, %.1f TFLOP/s, MFU %.3f of measured peak",
        p,
        1 / seconds,
        achieved / 1e12,
        out[f"{p}.mfu_measured"],
    )
    return out


def hf_missing() -> str:
    """Why the Hugging Face shapes cannot run here ('' when they can)."""
    import importlib.util

    missing = [m for m in ("transformers", "peft") if importlib.util.find_spec(m) is None]
    return f"{' and '.join(missing)} not installed" if missing else ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Learner throughput and MFU on a GPU (bf16 autocast).")
    p.add_argument("--out", type=Path, required=True, help="write the figures here as JSON")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--tiny", action="store_true", help="tiny shapes and a few updates (a smoke test)")
    p.add_argument("--peak-tflops", type=float, default=DEFAULT_PEAK_TFLOPS, help="the peak MFU is measured against")
    p.add_argument("--datasheet-tflops", type=float, default=DATASHEET_TFLOPS, help="the device's dense bf16 figure")
    p.add_argument("--no-hf", action="store_true", help="skip the Hugging Face shapes")
    p.add_argument("--warmup", type=int, default=5, help="untimed updates per shape")
    p.add_argument("--updates", type=int, default=100, help="most timed updates per shape")
    p.add_argument("--seconds", type=float, default=60.0, help="timing stops after this many seconds per shape")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.device not in ("cuda", "cpu"):
        p.error(f"--device must be cuda or cpu, got {args.device!r}")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda needs a CUDA device and none is available; use --device cpu --tiny for a smoke test")
    shapes = TINY_SHAPES if args.tiny else SHAPES
    warmup, updates = (1, 3) if args.tiny else (args.warmup, args.updates)
    figures: dict = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "peak_tflops": args.peak_tflops,
        "torch": torch.__version__,
    }
    for shape in shapes:
        figures.update(measure(shape, args.device, warmup, updates, args.seconds, args.peak_tflops * 1e12))
    skipped = "--no-hf" if args.no_hf else hf_missing()
    if skipped:
        figures["hf_skipped"] = skipped
    else:
        from tokenq.bench.hf import HF_SHAPES, TINY_HF_SHAPES

        peaks = {"measured": measured_peak_tflops(args.device, args.tiny), "datasheet": args.datasheet_tflops}
        figures.update({"measured_peak_tflops": peaks["measured"], "datasheet_tflops": peaks["datasheet"]})
        for shape in TINY_HF_SHAPES if args.tiny else HF_SHAPES:
            figures.update(measure_hf(shape, args.device, warmup, updates, args.seconds, peaks))
    print_table(figures)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
