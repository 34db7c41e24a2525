"""What the application hands the Ray driver to build its hosts with. No ray import: serial mode and tokenq/build.py
name it without loading Ray."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from actors.rollout import RolloutWorker
from learner.learner import Learner


@dataclass(frozen=True)
class HostFactories:
    """What the application hands the driver to build its hosts with (picklable: they travel to the actors)."""

    make_worker: Callable[[float, int], RolloutWorker]  # (epsilon, seed) -> a rollout worker
    make_learner: Callable[[], Learner]  # -> a learner, warm-started if the run says so
    make_evaluator: Callable[[], Callable[[dict], dict]] | None = None  # -> evaluate(state dict) -> result
