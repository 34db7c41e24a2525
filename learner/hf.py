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

With `model.lora_rank` > 0 (learner/lora.py) the LM is frozen and carries adapters; the network's state dict is then
its adapters and heads alone, which is what checkpoints keep and what actors receive. `base_only=True` makes a
network that reads the base model with the adapters off: the fluency prior, sharing the LM with the Q-network.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from learner.config import QNetConfig
from learner.lora import adapters_off, add_lora, is_trained_key, weights_fingerprint

Q_HEADS = ("dueling_max", "plain", "separate")


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

    def base_reference(self) -> dict[str, str]:
        """The base model's path and weights fingerprint, stored in checkpoints in place of the base itself."""
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.lm)
        return {"path": self.cfg.hf_path, "fingerprint": self._fingerprint}

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

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
