"""The `tokenq` command: train, eval, bench. Errors users can fix are one sentence and exit code 2."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from actors.tasks import TaskError
from actors.text import TextError
from distributed.codec import CodecError
from distributed.config import ConfigError
from distributed.replay import SnapshotError
from learner.checkpoint import CheckpointError
from learner.learner import DivergedError

log = logging.getLogger("tokenq")
USER_ERRORS = (ConfigError, TaskError, CheckpointError, TextError, SnapshotError, CodecError, DivergedError)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tokenq", description="Token-level Q-learning for language models.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a Q-network on a task")
    t.add_argument(
        "--config",
        default=None,
        help="a preset (reverse, copy, sort, add, tiny, keywords, fluency, article) or a YAML file (default reverse)",
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

    b = sub.add_parser("bench", help="measure rollout and learner throughput; prints figures")
    b.add_argument("--quick", action="store_true", help="fewer repetitions")
    b.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    return p


def cmd_train(args) -> int:
    from distributed.components import build_spec
    from distributed.resume import new_run, resume_run
    from distributed.serial import train_serial

    if args.resume is not None:
        cfg, run_dir, name, mode, state = resume_run(args)
    else:
        cfg, run_dir, name, mode = new_run(args)
        state = None
    spec = build_spec(cfg)
    log.info("tokenq train: config %s, mode %s, run dir %s", name, mode, run_dir)
    if mode == "serial":
        summary = train_serial(cfg, run_dir, name, spec, resume=state)
    else:
        from distributed.ray_driver import train_distributed

        summary = train_distributed(cfg, run_dir, name, spec, args.address, resume=state)
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
    from distributed.evaluate_run import evaluate_run

    result = evaluate_run(args.run_dir, args.prompts, args.checkpoint)
    keys = ("success_rate", "mean_return", "optimal_mean_return", "q_star_max_abs_error", "q_star_mean_abs_error")
    print(json.dumps({k: result[k] for k in keys}))
    for s in result["samples"]:
        print(f"  {s['prompt']!r} -> {s['generation']!r}  return {s['return']}")
    return 0


def cmd_pretrain(args) -> int:
    from distributed.config import load_config
    from distributed.pretrain_run import pretrain

    overrides = list(args.overrides) + ([f"task.corpus={args.corpus}"] if args.corpus else [])
    summary = pretrain(load_config(args.config, overrides), args.run_dir)
    print(
        f"done: {summary['steps']} steps on {summary['sentences']} sentences, vocabulary {summary['vocab_size']}; "
        f"held-out perplexity {summary['heldout_perplexity']}; use init.from_run={args.run_dir}"
    )
    return 0


def cmd_generate(args) -> int:
    from distributed.evaluate_run import generate_one

    rows = generate_one(args.run_dir, args.prompt, args.checkpoint)
    print(f"prompt: {args.prompt}")
    print(f"{'t':>3}  {'token':<14} {'V(s_t)':>8} {'Q(s_t,a_t)':>10} {'reward':>8}")
    for t, row in enumerate(rows):
        print(f"{t:>3}  {row['token']:<14} {row['value']:>8.3f} {row['q']:>10.3f} {row['reward']:>8.3f}")
    print("generation:", " ".join(r["token"] for r in rows))
    return 0


def cmd_bench(args) -> int:
    from distributed.bench import run_bench

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
    try:
        return {
            "train": cmd_train,
            "eval": cmd_eval,
            "bench": cmd_bench,
            "pretrain": cmd_pretrain,
            "generate": cmd_generate,
        }[args.command](args)
    except USER_ERRORS as err:
        cause = getattr(err, "cause", None)  # raised inside a Ray actor: report the original sentence
        print(f"tokenq: error: {cause if isinstance(cause, USER_ERRORS) else err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tokenq: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
