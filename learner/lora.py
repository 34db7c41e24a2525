"""LoRA adapters (Hu et al. 2021) on a Hugging Face causal LM, through peft's `inject_adapter_in_model`.

A Q-network the size of a real LM is never copied: the online network is base + adapters + Q/V heads; the target
network (`AdapterTarget`) is a copy of the adapters and heads alone, run over the online network's base with
`torch.func.functional_call`; the fluency prior is the same base with the adapters switched off (`adapters_off`).
Checkpoints and published weights hold adapters and heads only, plus a reference to the base model: its path and a
fingerprint of its weights (`weights_fingerprint`), checked when a checkpoint is loaded. `save_adapters` writes them
as peft does, so that `peft.PeftModel.from_pretrained(base, directory)` reads them too.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn as nn

from learner.checkpoint import CheckpointError
from learner.config import QNetConfig

ADAPTER_KEY = "lora_"  # every peft LoRA parameter's name holds it (lora_A, lora_B, lora_embedding_A, ...)
ADAPTER_WEIGHTS = "adapter_model.safetensors"  # peft's file names in a saved adapter directory
ADAPTER_CONFIG = "adapter_config.json"
PEFT_PREFIX = "base_model.model."  # PeftModel's keys: the model the adapters sit in is its base_model.model


class LoRAError(ValueError):
    """A LoRA setting that cannot be applied; the message is one sentence naming it."""


def _conv1d() -> tuple[type, ...]:
    try:
        from transformers.pytorch_utils import Conv1D  # GPT-2's linear layer, its weight stored transposed
    except ImportError:
        return ()
    return (Conv1D,)


def linear_targets(lm: nn.Module) -> list[str]:
    """The names of the body's linear layers (attention and MLP projections), never the LM head."""
    head = lm.get_output_embeddings()
    kinds = (nn.Linear, *_conv1d())
    return sorted({name.rsplit(".", 1)[-1] for name, m in lm.named_modules() if isinstance(m, kinds) and m is not head})


def add_lora(lm: nn.Module, cfg: QNetConfig) -> None:
    """Inject rank-`cfg.lora_rank` adapters into `lm` in place and freeze everything but them. B starts at 0, so the
    network's outputs are the base model's until the first update."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise LoRAError('hf.lora_rank needs peft, which is not installed: pip install -e ".[hf]"') from None
    if cfg.lora_targets.strip() == "all-linear":
        targets = linear_targets(lm)
    else:
        targets = [t.strip() for t in cfg.lora_targets.split(",") if t.strip()]
    if not targets:
        raise LoRAError(f"hf.lora_targets={cfg.lora_targets!r} names no module")
    transposed = any(isinstance(m, _conv1d()) and name.rsplit(".", 1)[-1] in targets for name, m in lm.named_modules())
    config = LoraConfig(
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        target_modules=targets,
        lora_dropout=0.0,
        bias="none",
        fan_in_fan_out=transposed,
    )
    try:
        inject_adapter_in_model(config, lm)
    except ValueError as err:
        reason = str(err).strip().splitlines()[0][:160]
        raise LoRAError(f"hf.lora_targets={cfg.lora_targets!r} does not fit this model ({reason})") from None
    for name, p in lm.named_parameters():
        p.requires_grad_(ADAPTER_KEY in name)


def _tuner_layers(lm: nn.Module) -> list[nn.Module]:
    try:
        from peft.tuners.tuners_utils import BaseTunerLayer
    except ImportError:
        return []
    return [m for m in lm.modules() if isinstance(m, BaseTunerLayer)]


@contextmanager
def adapters_off(lm: nn.Module) -> Iterator[None]:
    """Run the base model alone: the fluency prior of a LoRA network is its own base with the adapters switched off.
    peft's switch also changes requires_grad; the flags are put back as they were."""
    layers = _tuner_layers(lm)
    flags = [(p, p.requires_grad) for m in layers for p in m.parameters()]
    for m in layers:
        m.enable_adapters(False)
    try:
        yield
    finally:
        for m in layers:
            m.enable_adapters(True)
        for p, flag in flags:
            p.requires_grad_(flag)


def merge_lora(lm: nn.Module) -> nn.Module:
    """Fold every adapter into its base layer (W + B A * alpha / r) and put the plain layer back: a standard model."""
    tuned = {id(m) for m in _tuner_layers(lm)}
    for name, m in list(lm.named_modules()):
        if id(m) in tuned and hasattr(m, "get_base_layer"):
            m.merge()
            parent, _, child = name.rpartition(".")
            setattr(lm.get_submodule(parent) if parent else lm, child, m.get_base_layer())
    return lm


def is_trained_key(key: str) -> bool:
    """Whether a LoRA network's state-dict key is trained (and so checkpointed and published): adapters and heads."""
    return ADAPTER_KEY in key or not key.startswith("lm.")


def weights_fingerprint(lm: nn.Module) -> str:
    """A hash of the base model's weights (names, shapes and float32 values), adapters left out: a checkpoint of
    adapters names the base it was trained on by it."""
    h = hashlib.sha256()
    for name, t in sorted(lm.state_dict().items()):
        if ADAPTER_KEY in name:
            continue
        h.update(name.replace(".base_layer", "").encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def save_adapters(lm: nn.Module, directory: Path, base_path: str) -> None:
    """`lm`'s adapters as peft's save_pretrained writes them: adapter_config.json and adapter_model.safetensors."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    config = copy.copy(lm.peft_config["default"])
    config.base_model_name_or_path, config.inference_mode = base_path, True
    config.save_pretrained(str(directory))
    weights = {PEFT_PREFIX + k: v.detach().contiguous() for k, v in get_peft_model_state_dict(lm).items()}
    save_file(weights, Path(directory) / ADAPTER_WEIGHTS)


def load_adapters(lm: nn.Module, directory: Path) -> None:
    """Load the adapters `save_adapters` wrote into `lm`, which carries adapters of the same targets and rank."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = {k.removeprefix(PEFT_PREFIX): v for k, v in load_file(Path(directory) / ADAPTER_WEIGHTS).items()}
    result = set_peft_model_state_dict(lm, weights)
    missing = [k for k in result.missing_keys if ADAPTER_KEY in k]
    if result.unexpected_keys or missing:
        raise LoRAError(
            f"the adapters in {directory} do not fit this model (missing {missing[:2]}, unexpected "
            f"{result.unexpected_keys[:2]}); give the hf.lora_rank and hf.lora_targets they were trained with"
        )


def check_base(reference: dict, own: dict | None, source) -> None:
    """Refuse adapters trained on another base model (`reference`, from a checkpoint) than the one loaded (`own`,
    a network's `base_reference()`; None: a network without adapters)."""
    if own is None:
        raise CheckpointError(
            f"the checkpoint in {source} holds LoRA adapters, but this network has none (hf.lora_rank=0); "
            "give the hf.lora_rank the run was trained with"
        )
    if reference.get("fingerprint") != own["fingerprint"]:
        raise CheckpointError(
            f"the checkpoint in {source} holds adapters trained on the base model {reference.get('path')} "
            f"(weights fingerprint {reference.get('fingerprint')}), but init.from_hf={own['path']} has fingerprint "
            f"{own['fingerprint']}; give init.from_hf the base model the run was trained on"
        )


class AdapterTarget:
    """The Double-DQN target of a LoRA network: frozen copies of the adapters and heads, run over the online
    network's base (shared, never copied) by substituting them for the online ones in one functional call."""

    def __init__(self, online: nn.Module):
        self.online = online
        self.params = {k: v.detach().clone() for k, v in online.state_dict().items()}

    def __call__(self, prompts: torch.Tensor, actions: torch.Tensor, **kwargs) -> torch.Tensor:
        return torch.func.functional_call(self.online, self.params, (prompts, actions), kwargs, strict=False)

    def named_parameters(self) -> Iterator[tuple[str, torch.Tensor]]:
        return iter(self.params.items())

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.params)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if set(state) != set(self.params):
            raise RuntimeError("the target's adapters and heads do not match the online network's")
        with torch.no_grad():
            for k, v in state.items():
                self.params[k].copy_(v)
