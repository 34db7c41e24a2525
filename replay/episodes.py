"""The episode batch format: what actors send to replay and what replay sends to the learner.

Episodes are stored whole (token arrays, rewards, lengths, priorities), so the learner computes Q for every step
of a sampled sequence in one causal pass. Both cross process boundaries as packed numpy arrays, checked on arrival
(replay/format.py). Plain dataclasses of numpy arrays: imports neither torch, ray nor msgpack.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

PROMPT_PAD = -1  # pads prompts of different lengths on the right: no token has this id, so lengths are kept

# What an episode batch from an actor must hold: name -> (dtype kind, ndim).
EPISODE_SCHEMA = {"prompts": ("i", 2), "actions": ("i", 2), "rewards": ("f", 2), "lengths": ("i", 1)}
SAMPLE_SCHEMA = {**EPISODE_SCHEMA, "weights": ("f", 1), "slots": ("i", 1), "generations": ("i", 1)}
# What a shard adds to a sample for global importance weights and staleness (absent from hand-made batches).
SAMPLE_EXTRAS = {"probs": ("f", 1), "versions": ("i", 1), "ages": ("f", 1)}


@dataclass
class EpisodeBatch:
    """B finished episodes, padded to the longest. Crosses process boundaries as a dict of numpy arrays."""

    prompts: np.ndarray  # (B, P) int, right-padded with PROMPT_PAD where prompts differ in length
    actions: np.ndarray  # (B, T) int, PAD after each episode's end
    rewards: np.ndarray  # (B, T) float32, 0 after each episode's end
    lengths: np.ndarray  # (B,) int, tokens generated, EOS included
    priorities: np.ndarray | None = None  # (B,) actor-side initial priorities
    versions: np.ndarray | None = None  # (B,) int: the weights version that generated each episode
    q_taken: np.ndarray | None = None  # (B, T) Q(s_t, a_t) of the acting network
    values: np.ndarray | None = None  # (B, T) max_a Q(s_t, a) of the acting network

    @property
    def prompt_lengths(self) -> np.ndarray:
        return (self.prompts != PROMPT_PAD).sum(1)

    @property
    def returns(self) -> np.ndarray:
        return self.rewards.sum(1)

    @property
    def num_transitions(self) -> int:
        return int(self.lengths.sum())

    def as_dict(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass
class SampledBatch:
    """A prioritized sample of episodes; `slots` and `generations` identify them for priority updates."""

    prompts: np.ndarray  # (B, P) int, right-padded with PROMPT_PAD
    actions: np.ndarray  # (B, T) int, T = the longest sampled episode
    rewards: np.ndarray  # (B, T) float32
    lengths: np.ndarray  # (B,) int
    weights: np.ndarray  # (B,) float32 importance weights, max 1
    slots: np.ndarray  # (B,) int
    generations: np.ndarray  # (B,) int: the insert count of each slot, so stale updates are dropped
    probs: np.ndarray | None = None  # (B,) float64: the chance one draw from its shard picks each episode
    versions: np.ndarray | None = None  # (B,) int: the weights version that generated each episode (-1: unknown)
    ages: np.ndarray | None = None  # (B,) float32: seconds since each episode was inserted

    @property
    def prompt_lengths(self) -> np.ndarray:
        return (self.prompts != PROMPT_PAD).sum(1)

    def as_dict(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.__dict__.items() if v is not None}
