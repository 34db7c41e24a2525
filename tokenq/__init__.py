"""tokenq: train Transformer language models as token-level Q-functions, Ape-X style, on Ray.

    import tokenq
    summary = tokenq.train("reverse", "runs/rev", mode="serial")
    policy = tokenq.load("runs/rev")
    policy.generate(["abcdef"])  # [{"generation": "fedcba<eos>", "values": [...], "q_taken": [...], ...}]

The application (CLI, config and presets, the serial runner, run directories, evaluation, pretraining, the
benchmark) lives here; actors/, replay/ and learner/ hold the algorithm; distributed/ hosts it on Ray.
"""

from __future__ import annotations

__all__ = ["train", "load"]


def train(*args, **kwargs):
    from tokenq.api import train as _train

    return _train(*args, **kwargs)


train.__doc__ = "See tokenq.api.train."


def load(*args, **kwargs):
    from tokenq.api import load as _load

    return _load(*args, **kwargs)


load.__doc__ = "See tokenq.api.load."
