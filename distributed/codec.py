"""The wire codec for weights: a state dict as packed numpy arrays (replay/format.py), never pickle."""

from __future__ import annotations

import torch

from replay.format import pack_arrays, unpack_arrays


def pack_weights(state_dict: dict[str, torch.Tensor]) -> bytes:
    """A CPU state dict as packed float32/int arrays (weights travel learner -> actors without pickle)."""
    arrays = {}
    for k, v in state_dict.items():
        t = v.detach().cpu()
        arrays[k] = (t.float() if t.is_floating_point() else t).numpy()
    return pack_arrays(arrays)


def unpack_weights(data: bytes) -> dict[str, torch.Tensor]:
    arrays, _ = unpack_arrays(data, "published weights")
    return {k: torch.from_numpy(a.copy()) for k, a in arrays.items()}
