"""The wire format of weights: a state dict as a flat dict of numpy arrays, never pickled tensors.

Ray stores numpy arrays in its object store as raw buffers, so a rollout actor reads published weights zero-copy
(`ray.get` maps them read-only) and copies them once, into its network. Received weights are checked: every value
must be a numeric numpy array.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

ALLOWED_KINDS = "fiub"  # float, signed and unsigned integers, bool


def weights_arrays(state_dict: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """A state dict as numpy arrays (floats as float32). On the CPU these share the tensors' memory: they are for
    sending at once (Ray copies arguments into its object store when the call is made)."""
    arrays = {}
    for k, v in state_dict.items():
        t = v.detach().cpu()
        arrays[k] = (t.float() if t.is_floating_point() else t).numpy()
    return arrays


def weights_nbytes(arrays: dict[str, np.ndarray]) -> int:
    return sum(a.nbytes for a in arrays.values())


def weights_tensors(arrays: dict, what: str = "published weights") -> dict[str, torch.Tensor]:
    """Tensors over received arrays, without a copy (`load_state_dict` copies them into the network)."""
    if not isinstance(arrays, dict):
        raise ValueError(f"{what} are a {type(arrays).__name__}, not a dict of arrays")
    tensors = {}
    with warnings.catch_warnings():  # arrays read from Ray's object store are read-only; load_state_dict copies them
        warnings.simplefilter("ignore", UserWarning)
        for k, a in arrays.items():
            if not isinstance(k, str) or not isinstance(a, np.ndarray) or a.dtype.kind not in ALLOWED_KINDS:
                raise ValueError(f"{what} hold {k!r}, which is not a numeric numpy array")
            tensors[k] = torch.from_numpy(a)
    return tensors
