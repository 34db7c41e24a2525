"""Checkpoints: atomic writes, the newest M kept, and safe loading (torch.load with weights_only=True)."""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path

_NAME = re.compile(r"^ckpt_(\d{8})\.pt$")


class CheckpointError(ValueError):
    pass


def checkpoint_path(directory: Path, updates: int) -> Path:
    return Path(directory) / f"ckpt_{updates:08d}.pt"


def checkpoint_updates(path: Path) -> int:
    """The update count in a checkpoint's file name."""
    return int(_NAME.match(Path(path).name).group(1))


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoints in `directory`, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _NAME.match(p.name))


def save_checkpoint(directory: Path, updates: int, state: dict, keep: int) -> Path:
    """Write to a temporary file, fsync, then rename, so a crash never leaves a half-written checkpoint."""
    import torch  # here, not at the top: naming and listing checkpoints (the CLI's checks) stays torch-free

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(directory, updates)
    tmp = path.with_suffix(".pt.tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path) -> dict:
    """Load with weights_only=True: tensors and plain containers only, never arbitrary objects."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError):
        # torch's own message runs to several sentences (and suggests weights_only=False, which we never use).
        raise CheckpointError(
            f"checkpoint {path} is corrupted or truncated and cannot be read; delete it to use the one before"
        ) from None
    if not isinstance(state, dict) or "learner" not in state or "config" not in state:
        raise CheckpointError(f"checkpoint {path} is not a tokenq checkpoint")
    return state


def latest_checkpoint(directory: Path) -> Path | None:
    found = list_checkpoints(directory)
    return found[-1] if found else None
