"""A Hugging Face causal language model as the token-level Q-network: Q(s, .) over the model's whole vocabulary.

The LM's own code is untouched (as trlx's ILQL heads sit on a causal LM): the body gives hidden states h_t, the LM
head gives logits, and a head reads Q from them (QNetConfig.q_head):
- "dueling_max": Q = V(s) + logits - max logits, V a new linear head that starts at 0. The warm start's greedy
  policy is the LM's, and log p(a|s) - max log p(.|s) = logits - max logits, so the `gap` fluency reward is
  Bellman-consistent from the first update.
- "plain": Q = logits; "separate": a new linear Q head initialised from the LM head.
("dueling", the mean-centred head, is tokenq's own network's: centring on the mean of 49,152 logits would throw
away the LM's greedy policy as the warm start.)

Prompts arrive as (B, P) ids right-padded with -1 (each prompt's length kept); the network left-aligns them so that
every prompt ends at column P-1, with an attention mask and positions counted from each prompt's first token.
Then Q(s_0) is the output at P-1 and Q(s_t) the output t columns later, for any mix of prompt lengths.

With `hf.lora_rank` > 0 (learner/lora.py) the LM is frozen and carries adapters; the network's state dict is then
its adapters and heads alone, which is what checkpoints keep and what actors receive. `base_only=True` makes a
network that reads the base model with the adapters off: the fluency prior, sharing the LM with the Q-network.

`save_pretrained` writes a directory as transformers and peft do: the adapters (peft's adapter_config.json and
adapter_model.safetensors) or, without LoRA, the whole LM (its config.json and weights); the heads in
`HEADS_FILE`; the QNetConfig and base reference in learner/qfunction.py's CONFIG_FILE.
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from learner.config import LearnerConfig, QNetConfig
from learner.lora import (
    AdapterTarget,
    adapters_off,
    add_lora,
    check_base,
    is_trained_key,
    load_adapters,
    merge_lora,
    save_adapters,
    weights_fingerprint,
)
from learner.qfunction import QFunction, QFunctionError, Target, read_config, write_config

Q_HEADS = ("dueling_max", "plain", "separate")
HEADS_FILE = "heads.safetensors"  # v_head / q_head / token_bias: every trained weight outside the LM


class HFModelError(ValueError):
    """A model directory that cannot serve as a Q-network; the message is one sentence naming it."""


def load_causal_lm(path: str) -> nn.Module:
    """AutoModelForCausalLM from a model directory (or a hub name where a hub is reachable) or a GGUF file, fp32,
    or one sentence."""
    try:
        from transformers import AutoConfig, AutoModelForCausalLM
    except ImportError:
        raise HFModelError('init.from_hf needs the Hugging Face extra: pip install -e ".[hf]"') from None
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar per load, in every actor process, drowns the progress lines
    hf_logging.set_verbosity_error()
    local = Path(path)
    if path.endswith(".gguf"):
        return _load_gguf(local)
    if not local.exists() and (local.is_absolute() or path.startswith(".") or path.count("/") > 1):
        raise HFModelError(f"init.from_hf={path} does not exist (give a model directory, as save_pretrained writes)")
    if local.exists() and not (local.is_dir() and (local / "config.json").is_file()):
        raise HFModelError(f"init.from_hf={path} is not a model directory (no config.json, as save_pretrained writes)")
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise HFModelError(f"init.from_hf={path} is not a model directory ({_first_line(err)})") from None
    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except ValueError as err:
        if "Unrecognized configuration class" in str(err):
            raise HFModelError(
                f"init.from_hf={path} holds a {type(config).__name__.removesuffix('Config')} model, which is not "
                "a causal language model (AutoModelForCausalLM cannot load it)"
            ) from None
        raise HFModelError(f"cannot load the model in {path} ({_first_line(err)})") from None
    except OSError as err:
        raise HFModelError(f"cannot load the model in {path} ({_first_line(err)})") from None


def _load_gguf(file: Path) -> nn.Module:
    """A GGUF file's model dequantized to float32, as a plain model (save_pretrained works on it, as on any other)."""
    from transformers import AutoModelForCausalLM

    if not file.is_file():
        raise HFModelError(f"init.from_hf={file} does not exist (give a .gguf file or a model directory)")
    for package in ("gguf", "accelerate"):
        if importlib.util.find_spec(package) is None:
            raise HFModelError(f'init.from_hf={file} is a GGUF file, which needs {package}: pip install -e ".[hf]"')
    os.environ["TQDM_DISABLE"] = "1"  # the dequantization bar, one per process that loads the file
    try:
        loaded = AutoModelForCausalLM.from_pretrained(file.parent, gguf_file=file.name, dtype=torch.float32)
    except Exception as err:  # noqa: BLE001 - the gguf reader raises anything from struct errors to KeyError
        reason = _first_line(err)
        raise HFModelError(f"init.from_hf={file} is not a GGUF model transformers can read ({reason})") from None
    # transformers marks a GGUF-loaded model as quantized, which save_pretrained refuses; the weights are already
    # dequantized, so they move into a plain model of the same config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    lm = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    lm.load_state_dict(loaded.state_dict())
    lm.generation_config = loaded.generation_config
    return lm


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__


def context_length(lm: nn.Module) -> int | None:
    """The most positions the model can attend over, where its config says."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(lm.config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


@dataclass
class HFDecodeCache:
    """The model's own KV cache plus what the next step needs: the attention mask so far and the next positions."""

    past: object  # transformers Cache, updated in place by each forward
    attention_mask: torch.Tensor  # (B, P + t) long
    next_pos: torch.Tensor  # (B,) long


class HFQNetwork(nn.Module):
    def __init__(self, cfg: QNetConfig, lm: nn.Module | None = None, base_only: bool = False):
        super().__init__()
        if cfg.q_head not in Q_HEADS:
            raise HFModelError(
                f"model.q_head must be one of {', '.join(Q_HEADS)} for a Hugging Face model, got {cfg.q_head!r}"
            )
        self.cfg = cfg
        self.lm = lm if lm is not None else load_causal_lm(cfg.hf_path)
        self.lm.config.use_cache = False  # the learner's passes; the actors ask for a cache explicitly
        # transformers 5 names the cache argument `cache`, 4.x `past_key_values`: looked up once, not per token
        forward_args = inspect.signature(self.lm.base_model.forward).parameters
        self._cache_arg = "cache" if "cache" in forward_args else "past_key_values"
        lm_head = self.lm.get_output_embeddings()
        d = lm_head.in_features
        self.v_head = nn.Linear(d, 1) if cfg.q_head == "dueling_max" else None
        if self.v_head is not None:
            nn.init.zeros_(self.v_head.weight)
            nn.init.zeros_(self.v_head.bias)
        self.q_head = None
        if cfg.q_head == "separate":
            self.q_head = nn.Linear(d, lm_head.out_features, bias=lm_head.bias is not None)
            with torch.no_grad():
                self.q_head.weight.copy_(lm_head.weight)
                if lm_head.bias is not None:
                    self.q_head.bias.copy_(lm_head.bias)
        # A learned per-token bias on Q, starting at 0: token-level preferences (a banned letter) in one parameter
        # per token, learned directly instead of through the body.
        self.token_bias = nn.Parameter(torch.zeros(lm_head.out_features)) if cfg.token_bias else None
        self.base_only = base_only
        self._fingerprint: str | None = None
        if cfg.lora_rank > 0:
            add_lora(self.lm, cfg)

    # ----- with LoRA the state is the adapters and heads; the base model is a reference -----
    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        if self.cfg.lora_rank > 0:
            for key in [k for k in state if not is_trained_key(k)]:
                del state[key]
        return state

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        if self.cfg.lora_rank == 0:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        expected = set(self.state_dict())
        missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
        if strict and (missing or unexpected):
            raise RuntimeError(f"adapters and heads differ: missing {missing[:3]}, unexpected {unexpected[:3]}")
        return super().load_state_dict(state_dict, strict=False, assign=assign)

    @classmethod
    def build(cls, cfg: QNetConfig, share_lm: QFunction | None = None) -> HFQNetwork:
        """A network on `share_lm`'s LM (another HFQNetwork: the task's fluency prior) where sharing is safe: under
        LoRA only the adapters train, and the prior reads the base with them off. A network that trains its LM in
        full loads its own copy."""
        if cfg.lora_rank > 0 and isinstance(share_lm, HFQNetwork):
            return cls(cfg, lm=share_lm.lm)
        return cls(cfg)

    def base_reference(self) -> dict[str, str] | None:
        """The base model's path and weights fingerprint, stored in checkpoints in place of the base itself: under
        LoRA, the base beneath the adapters; with `base_only`, the base it reads (the prior, which a LoRA network
        shares). None for a network that trains its LM in full: its state dict is the whole model."""
        if self.cfg.lora_rank == 0 and not self.base_only:
            return None
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.lm)
        return {"path": self.cfg.hf_path, "fingerprint": self._fingerprint}

    def make_target(self) -> Target:
        """The frozen target: under LoRA a copy of the adapters and heads over this network's base (never copied),
        else a copy of the whole network."""
        if self.cfg.lora_rank > 0:
            return AdapterTarget(self)
        return copy.deepcopy(self).requires_grad_(False)

    def param_groups(self, cfg: LearnerConfig) -> list[dict]:
        """The trainable parameters; the heads the LM gains at hf.head_lr, its token bias at hf.token_bias_lr, when
        they are set."""
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        head_lr = self.cfg.head_lr or cfg.lr
        groups = [
            {"params": [p for n, p in named if n.startswith("lm.")], "lr": cfg.lr},
            {"params": [p for n, p in named if not n.startswith("lm.") and n != "token_bias"], "lr": head_lr},
            {"params": [p for n, p in named if n == "token_bias"], "lr": self.cfg.token_bias_lr or head_lr},
        ]
        return [g for g in groups if g["params"]]

    def describe(self) -> str:
        lora = f" with LoRA rank {self.cfg.lora_rank}" if self.cfg.lora_rank > 0 else ""
        return f"Hugging Face {type(self.lm).__name__}{lora}"

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # ----- saving, loading and exporting as transformers and peft do -----
    def save_pretrained(self, directory: str | Path) -> None:
        """Adapters (or the whole LM), heads and config in `directory` (the module docstring lists the files)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.cfg.lora_rank > 0:
            save_adapters(self.lm, directory, self.cfg.hf_path)
        else:
            self.lm.save_pretrained(directory)
        heads = {k: v.detach().contiguous() for k, v in super().state_dict().items() if not k.startswith("lm.")}
        save_file(heads, directory / HEADS_FILE)
        write_config(directory, self.cfg, self.base_reference())

    @classmethod
    def from_pretrained(cls, directory: str | Path, lm: nn.Module | None = None) -> HFQNetwork:
        """The network `save_pretrained` wrote to `directory`. Under LoRA its base is `lm`, or loaded from the
        config's hf_path, and must be the base the adapters were trained on (one sentence if not); without LoRA the
        directory holds the whole LM."""
        from safetensors.torch import load_file

        directory = Path(directory)
        cfg, base = read_config(directory)
        if not cfg.hf_path:
            raise QFunctionError(f"{directory} holds tokenq's own Q-network; load it with QNetwork.from_pretrained")
        if cfg.lora_rank == 0:
            if lm is not None:
                raise QFunctionError(f"{directory} holds a whole fine-tuned model; give lm only with LoRA adapters")
            lm = load_causal_lm(str(directory))
        net = cls(cfg, lm=lm)
        if cfg.lora_rank > 0:
            check_base(base or {}, net.base_reference(), directory)
            load_adapters(net.lm, directory)
        result = nn.Module.load_state_dict(net, load_file(directory / HEADS_FILE), strict=False)
        missing = [k for k in result.missing_keys if not k.startswith("lm.")]
        if missing or result.unexpected_keys:
            raise QFunctionError(f"the heads in {directory} do not fit its config (missing {missing[:2]})")
        return net

    def export_model(self) -> nn.Module:
        """The LM as a standard transformers model whose greedy policy is Q's (tokenq/export.py says what its head
        computes): adapters merged into their layers, a separate Q head in place of the LM head. Like peft's
        merge_and_unload it works in place: the network is not used after it."""
        if self.token_bias is not None:
            raise QFunctionError(
                "this run learned a per-token bias (hf.token_bias), which no standard LM head holds; export runs "
                "trained without it"
            )
        lm = merge_lora(self.lm)
        if self.q_head is not None:
            head = nn.Linear(self.q_head.in_features, self.q_head.out_features, bias=self.q_head.bias is not None)
            head.load_state_dict(self.q_head.state_dict())
            lm.config.tie_word_embeddings = False  # the Q head is not the input embedding matrix
            if hasattr(lm.config, "get_text_config"):
                lm.config.get_text_config().tie_word_embeddings = False
            lm.set_output_embeddings(head)
        lm.config.use_cache = True  # the network turned it off for the learner's passes
        return lm

    def _mode(self):
        return adapters_off(self.lm) if self.base_only else nullcontext()

    @property
    def vocab_size(self) -> int:
        return self.lm.get_output_embeddings().out_features

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def enable_grad_checkpointing(self) -> None:
        """Recompute each layer's activations in backward. transformers checkpoints only in train mode, so the LM
        goes to train mode with its dropout off: Q-targets are noisy enough, and actors act without dropout."""
        if hasattr(self.lm, "activation_checkpointing_enable"):  # transformers >= 5.x names it so
            self.lm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            self.lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.lm.train()
        for m in self.lm.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0

    def q_values(self, h: torch.Tensor) -> torch.Tensor:
        """h (B, [T,] D) final hidden states -> Q (B, [T,] V)."""
        if self.q_head is not None:
            q = self.q_head(h)
        else:
            q = self.lm.get_output_embeddings()(h)
            if self.v_head is not None:
                q = self.v_head(h) + q - q.amax(-1, keepdim=True)
        return q if self.token_bias is None else q + self.token_bias

    def _body(self, input_ids, attention_mask, position_ids, past=None) -> tuple[torch.Tensor, object]:
        out = self.lm.base_model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=past is not None,
            **({self._cache_arg: past} if past is not None else {}),
        )
        return out.last_hidden_state, past

    @staticmethod
    def left_align(prompts: torch.Tensor, pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded prompts (B, P) (-1 = padding) -> left-padded ids and their attention mask, both (B, P)."""
        lengths = (prompts >= 0).sum(1)  # (B,)
        prompts = prompts[:, : int(lengths.max())]  # columns of padding alone cost compute and change nothing
        B, P = prompts.shape
        src = torch.arange(P, device=prompts.device)[None, :] - (P - lengths)[:, None]  # column j holds token src
        mask = src >= 0
        ids = prompts.gather(1, src.clamp(min=0)).masked_fill(~mask, pad_id)
        return ids, mask.long()

    def forward(self, prompts: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """prompts (B, P) right-padded with -1, actions (B, T) -> Q(s_t, .) for t = 0..T: (B, T+1, V)."""
        ids, mask = self.left_align(prompts)
        P = ids.shape[1]
        input_ids = torch.cat([ids, actions], dim=1)  # (B, P + T)
        attention_mask = torch.cat([mask, torch.ones_like(actions)], dim=1)
        position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0)
        with self._mode():
            h, _ = self._body(input_ids, attention_mask, position_ids)
        return self.q_values(h[:, P - 1 :])  # (B, T+1, V)

    @torch.no_grad()
    def start(self, prompts: torch.Tensor, max_new: int) -> tuple[torch.Tensor, HFDecodeCache]:
        """Prefill the prompts into the model's KV cache; Q(s_0, .) (B, V)."""
        from transformers import DynamicCache

        ids, mask = self.left_align(prompts)
        position_ids = (mask.cumsum(1) - 1).clamp(min=0)
        with self._mode():
            h, past = self._body(ids, mask, position_ids, past=DynamicCache(config=self.lm.config))
        cache = HFDecodeCache(past, mask, position_ids[:, -1] + 1)
        return self.q_values(h[:, -1]), cache

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, cache: HFDecodeCache) -> torch.Tensor:
        """Append one token per sequence (B,) and return Q of the new state (B, V): one position of compute."""
        cache.attention_mask = torch.cat([cache.attention_mask, torch.ones_like(tokens)[:, None]], dim=1)
        with self._mode():
            h, cache.past = self._body(tokens[:, None], cache.attention_mask, cache.next_pos[:, None], cache.past)
        cache.next_pos = cache.next_pos + 1
        return self.q_values(h[:, -1])
