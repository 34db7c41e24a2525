"""Checkpoints: one typed Checkpoint for both modes and pretraining, atomic writes, the newest M kept, and safe
loading (torch.load with weights_only=True)."""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path

_NAME = re.compile(r"^ckpt_(\d{8})\.pt$")


class CheckpointError(ValueError):
    pass


@dataclass
class Checkpoint:
    """What a checkpoint file holds, in either mode and after `tokenq pretrain`. Stored as a dict of these fields
    (tensors and plain containers only, so that it loads with weights_only=True)."""

    learner: dict  # Learner.state_dict(): networks, optimizer, update counts
    config: dict  # the run's config tree (Config.to_dict())
    counters: dict = field(default_factory=dict)  # the host's counts: serial mode's, or the Ray driver's
    recorder: dict | None = None  # RunRecorder.state(): clocks, evaluation history, baseline evaluation
    torch_rng: object = None  # torch.get_rng_state() when written (a uint8 tensor)
    actor: dict | None = None  # serial mode: the actor's RNGs and weights version, its weights if they are older

    @property
    def updates(self) -> int:
        return int(self.learner["updates"])

    def save(self, directory: Path, keep: int) -> Path:
        """Write it as ckpt_<updates>.pt in `directory`, atomically, keeping the newest `keep`."""
        return save_checkpoint(directory, self.updates, {f.name: getattr(self, f.name) for f in fields(self)}, keep)

    @classmethod
    def from_dict(cls, state: object, path: Path) -> Checkpoint:
        names = {f.name for f in fields(cls)}
        if not isinstance(state, dict) or not {"learner", "config"} <= state.keys() <= names:
            raise CheckpointError(f"checkpoint {path} is not a tokenq checkpoint")
        return cls(**state)


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
    """Write `state` (Checkpoint.save's dict) to a temporary file, fsync, then rename, so a crash never leaves a
    half-written checkpoint."""
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


def load_checkpoint(path: Path) -> Checkpoint:
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
    return Checkpoint.from_dict(state, path)


def latest_checkpoint(directory: Path) -> Path | None:
    found = list_checkpoints(directory)
    return found[-1] if found else None
