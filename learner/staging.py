"""Copying a sampled batch to the learner's device.

On CUDA the copy goes through pinned host buffers (reused, grown when a batch is larger) on a side stream, so the
next batch's copy overlaps the current update; the update's stream waits on an event recorded after the copy. On
the CPU it only builds the tensors.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from replay.episodes import SampledBatch

# The SampledBatch fields the update reads, and their device dtypes.
FIELDS = {
    "prompts": torch.long,
    "actions": torch.long,
    "rewards": torch.float32,
    "lengths": torch.long,
    "weights": torch.float32,
}


class StagedBatch(NamedTuple):
    """A SampledBatch on the learner's device, with what the host still needs of it."""

    prompts: torch.Tensor  # (B, P) long
    actions: torch.Tensor  # (B, T) long
    rewards: torch.Tensor  # (B, T) float32
    lengths: torch.Tensor  # (B,) long
    weights: torch.Tensor  # (B,) float32 importance weights
    num_transitions: int  # sum of lengths, counted on the host (no device sync)
    slots: np.ndarray  # (B,) int, for the replay's priority update
    generations: np.ndarray  # (B,) int
    ready: torch.cuda.Event | None  # recorded on the copy stream after the copy (CUDA); None on the CPU

    def wait(self) -> None:
        """Make the current stream wait for the copy, and keep the tensors' memory until that stream is done."""
        if self.ready is None:
            return
        stream = torch.cuda.current_stream(self.prompts.device)
        stream.wait_event(self.ready)
        for name in FIELDS:
            getattr(self, name).record_stream(stream)  # allocated on the copy stream, used on this one


class Stager:
    """Copies SampledBatches to `device`; on CUDA through two sets of pinned buffers used in turn, so that a
    batch's buffers are not overwritten while its copy may still be in flight."""

    def __init__(self, device: torch.device):
        self.device = device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.buffers: list[dict[str, torch.Tensor]] = [{}, {}]
        self.copied: list[torch.cuda.Event | None] = [None, None]  # the last copy out of each set
        self.turn = 0

    def __call__(self, batch: SampledBatch) -> StagedBatch:
        host = {
            "num_transitions": int(batch.lengths.sum()),
            "slots": batch.slots,
            "generations": batch.generations,
        }
        if self.stream is None:
            # torch.tensor copies: received arrays are read-only
            tensors = {name: torch.tensor(getattr(batch, name), dtype=dt) for name, dt in FIELDS.items()}
            return StagedBatch(**tensors, **host, ready=None)
        pinned = self._fill(batch)
        with torch.cuda.stream(self.stream):
            tensors = {name: x.to(self.device, non_blocking=True) for name, x in pinned.items()}
            ready = torch.cuda.Event()
            ready.record(self.stream)
        self.copied[self.turn] = ready
        self.turn ^= 1
        return StagedBatch(**tensors, **host, ready=ready)

    def _fill(self, batch: SampledBatch) -> dict[str, torch.Tensor]:
        """This turn's pinned buffers holding the batch's arrays, as views of each array's shape."""
        if self.copied[self.turn] is not None:
            self.copied[self.turn].synchronize()  # two batches back: done unless no update ran in between
        buffers, views = self.buffers[self.turn], {}
        for name, dtype in FIELDS.items():
            x = getattr(batch, name)
            if name not in buffers or buffers[name].numel() < x.size:
                buffers[name] = torch.empty(x.size, dtype=dtype, pin_memory=True)
            view = buffers[name][: x.size].view(x.shape)
            np.copyto(view.numpy(), x, casting="unsafe")  # the dtype conversion torch.tensor(x, dtype) makes
            views[name] = view
        return views
