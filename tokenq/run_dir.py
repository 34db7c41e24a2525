"""Choosing the run directory of `tokenq train`: a new run never overwrites another, `--resume DIR` continues one.

A run directory holds config.json (the resolved config), run.json (mode and config name), checkpoints/ and, in
local mode, replay/ (shard snapshots). Resuming takes all of these from the directory; only overrides may change
the config, and a checkpoint written under another model or task is refused with one sentence.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from learner.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from tokenq.config import Config, ConfigError, config_from_dict, load_config, set_key, validate


def write_json(path: Path, data: dict) -> None:
    """Atomic: a reader never sees half a file."""
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def read_run_config(run_dir: Path) -> dict:
    path = Path(run_dir) / "config.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{run_dir} is not a tokenq run directory (no config.json)") from None
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"cannot read {path}: {err}") from None


# Sections that must match between a run's config and a checkpoint it resumes from.
FIXED_SECTIONS = ("task", "model")


def _differences(a: dict, b: dict, sections=FIXED_SECTIONS) -> list[str]:
    return [
        f"{s}.{k}: {a[s].get(k)!r} vs {b.get(s, {}).get(k)!r}"
        for s in sections
        for k in a[s]
        if a[s].get(k) != b.get(s, {}).get(k)
    ]


def check_new_run_dir(cfg: Config, run_dir: Path) -> None:
    """Refuse a directory that already holds a run (of this config: resume it; of another: choose another)."""
    run_dir = Path(run_dir)
    if (run_dir / "config.json").exists() and (
        latest_checkpoint(run_dir / "checkpoints") or (run_dir / "summary.json").exists()
    ):
        diff = _differences(cfg.to_dict(), read_run_config(run_dir))
        if diff:
            raise ConfigError(
                f"run directory {run_dir} belongs to a run of another config ({diff[0]}); choose another --run-dir"
            )
        raise ConfigError(
            f"run directory {run_dir} already holds this run; continue it with --resume {run_dir} or choose another "
            "--run-dir"
        )


def new_run(args) -> tuple[Config, Path, str, str]:
    """(config, run dir, config name, mode) for a fresh run; refuses a directory that already holds a run."""
    config = args.config or "reverse"
    cfg = load_config(config, args.overrides)
    name = Path(config).stem
    run_dir = args.run_dir or Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    check_new_run_dir(cfg, run_dir)
    return cfg, run_dir, name, args.mode or "local"


def resume_run(args) -> tuple[Config, Path, str, str, dict]:
    """(config, run dir, config name, mode, checkpoint state) to continue the run in args.resume."""
    run_dir = Path(args.resume)
    if args.config is not None:
        raise ConfigError(
            "--resume continues a run with its own config; give overrides (section.key=value), not --config"
        )
    if args.run_dir is not None and Path(args.run_dir) != run_dir:
        raise ConfigError("--resume RUN_DIR writes to RUN_DIR; drop --run-dir")
    tree = read_run_config(run_dir)
    try:
        info = json.loads((run_dir / "run.json").read_text())
        mode, name = info["mode"], info["config"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"{run_dir} has no readable run.json, so it is not a run that can be resumed") from None
    mode = "local" if mode == "cluster" else mode
    if args.mode is not None and args.mode != mode:
        raise ConfigError(f"{run_dir} is a {mode}-mode run; resume it with --mode {mode} (or without --mode)")
    cfg = config_from_dict(tree)
    for item in args.overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, value = item.split("=", 1)
        if key.strip().split(".")[0] in FIXED_SECTIONS:
            raise ConfigError(f"{key.strip()} cannot change when resuming: the checkpoint was trained with it")
        set_key(cfg, key.strip(), value)
    validate(cfg)
    path = latest_checkpoint(run_dir / "checkpoints")
    if path is None:
        raise CheckpointError(
            f"{run_dir} has no checkpoint to resume from (the first is written after train.checkpoint_every updates)"
        )
    state = load_checkpoint(path)
    diff = _differences(tree, state.config)
    if diff:
        raise CheckpointError(f"checkpoint {path} was written by a run of another config ({diff[0]})")
    return cfg, run_dir, name, mode, state
