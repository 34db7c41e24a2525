"""The Q-function interface: what learners, actors, evaluation and export ask of a token-level Q-network.

Two networks implement it: tokenq's own Transformer (`learner/model.py` `QNetwork`) and a Hugging Face causal LM
with Q heads, optionally under LoRA (`learner/hf.py` `HFQNetwork`). Their differences (a whole-network target copy
or one of adapters alone, one parameter group or three, a base model to fingerprint or none) live inside them, as
transformers' `PreTrainedModel` and Acme's networks keep theirs; `make_network` (learner/model.py) picks one.

Saving follows transformers: `save_pretrained(directory)` writes a directory that `from_pretrained(directory)`
reads, with the network's QNetConfig and base-model reference in `CONFIG_FILE`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn as nn

from learner.config import LearnerConfig, QNetConfig

CONFIG_FILE = "tokenq_qnet.json"  # next to transformers' config.json and peft's adapter_config.json, never either


class QFunctionError(ValueError):
    """What a network cannot do (export a tokenq network, load a directory of another kind); one sentence."""


@runtime_checkable
class Target(Protocol):
    """The frozen Double-DQN target (`QFunction.make_target`): a copy of the whole network, or of a LoRA network's
    adapters and heads run over the online network's base."""

    def __call__(self, prompts: torch.Tensor, actions: torch.Tensor, **kwargs) -> torch.Tensor: ...

    def named_parameters(self) -> Iterator[tuple[str, torch.Tensor]]: ...

    def state_dict(self) -> dict[str, torch.Tensor]: ...

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> Any: ...


@runtime_checkable
class QFunction(Protocol):
    """Q(s_t, .) over the vocabulary for every generated position. Prompts are (B, P) token ids (right-padded with
    -1 where a network takes prompts of mixed length), actions (B, T)."""

    cfg: QNetConfig

    # ----- acting (actors): incremental decoding with a KV cache -----
    def start(self, prompts: torch.Tensor, max_new: int) -> tuple[torch.Tensor, object]:
        """Encode the prompts: Q(s_0, .) (B, V) and a cache for `max_new` more tokens."""
        ...

    def step(self, tokens: torch.Tensor, cache: object) -> torch.Tensor:
        """Append one token per sequence (B,): Q of the new state (B, V)."""
        ...

    def reference_log_probs(self, cache: object) -> torch.Tensor | None:
        """log pi_ref(. | s) (B, V) of the reference model at the state `start`/`step` last computed, where the
        network computes it in the same pass (a frozen trunk's reference top, hf.train_layers); else None."""
        ...

    # ----- learning (the learner): whole sequences in one pass -----
    def forward(self, prompts: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q(s_t, .) for t = 0..T: (B, T+1, V)."""
        ...

    def __call__(self, prompts: torch.Tensor, actions: torch.Tensor) -> torch.Tensor: ...

    def q_pair(
        self, target: Target, prompts: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(online Q, the target's Q under no_grad, each (B, T+1, V), and log pi_ref (B, T+1, V) where the network
        holds a reference model, else None): what one update reads; a network with a frozen trunk runs it once for
        all three."""
        ...

    # ----- the trainable state: checkpointed, published to actors, copied into the target -----
    def state_dict(self, *args, **kwargs) -> dict[str, torch.Tensor]:
        """The trained weights only (under LoRA: adapters and heads, never the frozen base)."""
        ...

    def load_state_dict(self, state_dict: dict[str, torch.Tensor], strict: bool = True, assign: bool = False): ...

    def make_target(self) -> Target:
        """A frozen copy of the trainable state that computes Q as this network does."""
        ...

    def param_groups(self, cfg: LearnerConfig) -> list[dict]:
        """The trainable parameters as AdamW groups, each with its learning rate where it differs from cfg.lr; a
        group with a "max" is clamped under it after every step."""
        ...

    def base_reference(self) -> dict[str, str] | None:
        """The base model the trained state is relative to ({"path", "fingerprint"}; checkpoints keep it and refuse
        another base), or None where the state is the whole network."""
        ...

    def enable_grad_checkpointing(self) -> None:
        """Recompute activations in backward (hf.grad_checkpointing)."""
        ...

    # ----- describing, saving and exporting -----
    def describe(self) -> str:
        """The architecture in a few words, for the log."""
        ...

    def num_parameters(self) -> int: ...

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the network to `directory`, which `from_pretrained` reads back."""
        ...

    @classmethod
    def from_pretrained(cls, directory: str | Path, **kwargs) -> QFunction: ...

    def export_model(self) -> nn.Module:
        """The network as a standard transformers causal LM whose greedy policy is Q's (tokenq export)."""
        ...

    # ----- nn.Module's own, which callers use -----
    training: bool

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def named_parameters(self, *args, **kwargs) -> Iterator[tuple[str, nn.Parameter]]: ...

    def to(self, *args, **kwargs) -> QFunction: ...

    def eval(self) -> QFunction: ...


def write_config(directory: Path, cfg: QNetConfig, base: dict[str, str] | None) -> None:
    """`CONFIG_FILE`: the network's QNetConfig and, where it has one, its base model's reference."""
    text = json.dumps({"qnet": dataclasses.asdict(cfg), "base": base}, indent=2)
    (Path(directory) / CONFIG_FILE).write_text(text + "\n")


def read_config(directory: Path) -> tuple[QNetConfig, dict[str, str] | None]:
    """The QNetConfig and base reference `write_config` wrote, or one sentence."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise QFunctionError(f"{directory} holds no {CONFIG_FILE} (give a directory that save_pretrained wrote)")
    saved = json.loads(path.read_text())
    known = {f.name for f in dataclasses.fields(QNetConfig)}
    return QNetConfig(**{k: v for k, v in saved["qnet"].items() if k in known}), saved.get("base")
