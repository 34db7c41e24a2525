"""A Hugging Face causal language model as the token-level Q-network: Q(s, .) over the model's whole vocabulary.

The LM's own code is untouched (as trlx's ILQL heads sit on a causal LM): the body gives hidden states h_t, the LM
head gives logits, and a head reads Q from them (QNetConfig.q_head):
- "dueling_max": Q = V(s) + logits - max logits, V a new linear head that starts at 0. The warm start's greedy
  policy is the LM's, and log p(a|s) - max log p(.|s) = logits - max logits, so the `gap` fluency reward is
  Bellman-consistent from the first update.
- "plain": Q = logits; "separate": a new linear Q head initialised from the LM head.
- "soft" (learner.backup=soft, on a frozen trunk): Q = V(s) + beta (log pi - log pi_ref), pi the trained top's
  softmax and V a new linear head that starts at 0. Q starts at 0, so the soft policy pi_ref exp((Q - V) / beta)
  starts as the model itself and the soft Bellman equation holds at r = 0; with both policies normalised, the
  soft value beta log sum_a pi_ref exp(Q / beta) is V(s) itself. The policy is the trained model's own softmax:
  what `export_model` hands over.
("dueling", the mean-centred head, is tokenq's own network's: centring on the mean of 49,152 logits would throw
away the LM's greedy policy as the warm start.)

Prompts arrive as (B, P) ids right-padded with -1 (each prompt's length kept); the network left-aligns them so that
every prompt ends at column P-1, with an attention mask and positions counted from each prompt's first token.
Then Q(s_0) is the output at P-1 and Q(s_t) the output t columns later, for any mix of prompt lengths.

With `hf.lora_rank` > 0 (learner/lora.py) the LM is frozen and carries adapters; the network's state dict is then
its adapters and heads alone, which is what checkpoints keep and what actors receive. `base_only=True` makes a
network that reads the base model with the adapters off: the fluency prior, sharing the LM with the Q-network.

With `hf.train_layers=N` (learner/trunk.py) the LM is frozen and split: a trunk of its bottom blocks, run once per
batch under no_grad, feeds the online top (copies of the top N blocks and the final norm, trained), the target's top
(a copy of the trained part, `AdapterTarget`) and the reference's top (the LM's own top blocks): `q_pair` gives
the online and the target Q from one trunk pass, and `start` / `step` give Q and log pi_ref
(`reference_log_probs`) from one trunk pass per token. The state dict is then the top and the heads alone. A prompt
prefix shared by every prompt (`QNetConfig.prefix_ids`: the chat template's system turn) is read from a KV cache,
computed once for the frozen parts and once per batch at batch 1 for a trained one.

`save_pretrained` writes a directory as transformers and peft do: the adapters (peft's adapter_config.json and
adapter_model.safetensors) or, without LoRA or a trained top, the whole LM (its config.json and weights); the heads
(and a trained top) in `HEADS_FILE`; the QNetConfig and base reference in learner/qfunction.py's CONFIG_FILE.
"""

from __future__ import annotations

import copy
import importlib.util
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from learner import trunk
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

Q_HEADS = ("dueling_max", "plain", "separate", "soft")
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
    """The model's own KV caches (one, or the trunk's and the two tops' with hf.train_layers) plus what the next
    step needs: the attention mask so far, the next positions, and the reference's log-probs at the last state."""

    past: object  # transformers Cache(s), updated in place by each forward
    attention_mask: torch.Tensor  # (B, P + t) long
    next_pos: torch.Tensor  # (B,) long
    ref_logp: torch.Tensor | None = None  # (B, V) log pi_ref(. | s_t) where the network computes it


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
        lm_head = self.lm.get_output_embeddings()
        d = lm_head.in_features
        if cfg.q_head == "soft" and (cfg.train_layers < 0 or base_only or cfg.soft_beta <= 0):
            raise HFModelError(
                "model.q_head=soft reads the reference model from the frozen trunk: it needs hf.train_layers and "
                "learner.backup=soft"
            )
        self.v_head = nn.Linear(d, 1) if cfg.q_head in ("dueling_max", "soft") else None
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
        self._prefix = torch.tensor(cfg.prefix_ids, dtype=torch.long) if cfg.prefix_ids else None
        self._frozen: dict[tuple[str, str], tuple[torch.Tensor, trunk.KV]] = {}  # prefix caches of frozen parts
        self.split = cfg.train_layers >= 0 and not base_only
        self._views: dict[str, nn.Module] = {}  # the parts of the body (learner/trunk.py), never registered twice
        if cfg.lora_rank > 0:
            add_lora(self.lm, cfg)
        if self.split:
            self._split(cfg.train_layers)

    def _split(self, n: int) -> None:
        """A frozen trunk of the bottom L - n blocks and two tops of n blocks over it: the online one (trained,
        `top`) and the reference's (the original weights, `ref_top`)."""
        body = self.lm.base_model
        try:
            layers, norm = trunk.body_blocks(body)
        except trunk.SplitError as err:
            raise HFModelError(str(err)) from None
        if n > len(layers):
            raise HFModelError(f"hf.train_layers={n} is more than the model's {len(layers)} blocks")
        k = len(layers) - n
        self.lm.requires_grad_(False)
        self._views["trunk"] = trunk.body_view(body, layers[:k], norm if n == 0 else nn.Identity(), slice(0, k))
        if n > 0:
            self.top = nn.ModuleDict({"layers": trunk.renumbered(layers[k:]), "norm": copy.deepcopy(norm)})
            self.top.requires_grad_(True)  # copies of frozen blocks: trained from here on
            self.ref_top = nn.ModuleDict({"layers": trunk.renumbered(layers[k:]), "norm": copy.deepcopy(norm)})
            self.ref_top.requires_grad_(False)
            for name, part in (("top", self.top), ("ref", self.ref_top)):
                self._views[name] = trunk.body_view(body, part["layers"], part["norm"], slice(k, len(layers)))
        self._check_split()

    def _check_split(self) -> None:
        """The reference read through trunk and top must be the model itself: refuse a body the views do not fit."""
        with torch.no_grad():
            ids = torch.arange(3, 9)[None] % self.vocab_size
            full = torch.log_softmax(self.lm(input_ids=ids).logits.float(), -1)
            t = self.trunk_pass(ids[:, :2], ids[:, 2:])
            h_ref, _ = self._top("ref", t)
            split = torch.log_softmax(self.lm.get_output_embeddings()(h_ref).float(), -1)
        if not torch.allclose(split, full, atol=1e-3):
            raise HFModelError(
                f"hf.train_layers cannot split a {type(self.lm).__name__}: its body run as trunk and top does not "
                "give the model's own outputs; leave hf.train_layers at -1 (LoRA with hf.lora_rank)"
            )

    # ----- with LoRA or a frozen trunk the state is the trained part; the base model is a reference -----
    @property
    def partial(self) -> bool:
        """Whether the network trains a part of the model (adapters, or a top on a frozen trunk)."""
        return self.cfg.lora_rank > 0 or self.split

    def is_trained(self, key: str) -> bool:
        if self.split:
            return not key.startswith(("lm.", "ref_top."))
        return is_trained_key(key)

    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        if self.partial:
            for key in [k for k in state if not self.is_trained(k)]:
                del state[key]
        return state

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        if not self.partial:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        expected = set(self.state_dict())
        missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
        if strict and (missing or unexpected):
            raise RuntimeError(f"the trained weights differ: missing {missing[:3]}, unexpected {unexpected[:3]}")
        return super().load_state_dict(state_dict, strict=False, assign=assign)

    @classmethod
    def build(cls, cfg: QNetConfig, share_lm: QFunction | None = None) -> HFQNetwork:
        """A network on `share_lm`'s LM (another HFQNetwork: the task's fluency prior) where sharing is safe: under
        LoRA only the adapters train, and the prior reads the base with them off; a trained top is a copy. A
        network that trains its LM in full loads its own copy."""
        if (cfg.lora_rank > 0 or cfg.train_layers >= 0) and isinstance(share_lm, HFQNetwork):
            return cls(cfg, lm=share_lm.lm)
        return cls(cfg)

    def base_reference(self) -> dict[str, str] | None:
        """The base model's path and weights fingerprint, stored in checkpoints in place of the base itself: the
        base beneath the adapters or the trained top; with `base_only`, the base it reads (the prior, which such a
        network shares). None for a network that trains its LM in full: its state dict is the whole model."""
        if not self.partial and not self.base_only:
            return None
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.lm)
        return {"path": self.cfg.hf_path, "fingerprint": self._fingerprint}

    def make_target(self) -> Target:
        """The frozen target: a copy of the trained part (adapters or top, and heads) run over this network's base
        (never copied), else a copy of the whole network."""
        if self.partial:
            return AdapterTarget(self)
        return copy.deepcopy(self).requires_grad_(False)

    def param_groups(self, cfg: LearnerConfig) -> list[dict]:
        """The trainable parameters; the heads the LM gains at hf.head_lr, its token bias at hf.token_bias_lr with
        Adam's epsilon hf.token_bias_eps, when they are set (under the soft head, bounded above by 0)."""
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        head_lr = self.cfg.head_lr or cfg.lr
        body = ("lm.", "top.")
        groups = [
            {"params": [p for n, p in named if n.startswith(body)], "lr": cfg.lr},
            {"params": [p for n, p in named if not n.startswith(body) and n != "token_bias"], "lr": head_lr},
            {"params": [p for n, p in named if n == "token_bias"], "lr": self.cfg.token_bias_lr or head_lr},
        ]
        if self.cfg.token_bias_eps > 0:
            groups[-1]["eps"] = self.cfg.token_bias_eps
        if self.cfg.q_head == "soft":
            groups[-1]["max"] = 0.0  # the soft policy's token bias only takes mass away: see soft_q
        return [g for g in groups if g["params"]]

    def describe(self) -> str:
        lora = f" with LoRA rank {self.cfg.lora_rank}" if self.cfg.lora_rank > 0 else ""
        if self.split:
            n = self.cfg.train_layers
            lora = f" training {'its top ' + str(n) + ' blocks and ' if n else ''}its heads on a frozen trunk"
        prefix = f", a {len(self._prefix)}-token prompt prefix cached" if self._prefix is not None else ""
        return f"Hugging Face {type(self.lm).__name__}{lora}{prefix}"

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
        elif not self.split:
            self.lm.save_pretrained(directory)
        kept = super().state_dict().items()
        heads = {k: v.detach().contiguous() for k, v in kept if not k.startswith(("lm.", "ref_top."))}
        save_file(heads, directory / HEADS_FILE)
        write_config(directory, self.cfg, self.base_reference())

    @classmethod
    def from_pretrained(cls, directory: str | Path, lm: nn.Module | None = None) -> HFQNetwork:
        """The network `save_pretrained` wrote to `directory`. Under LoRA or with a trained top its base is `lm`,
        or loaded from the config's hf_path, and must be the base it was trained on (one sentence if not);
        otherwise the directory holds the whole LM."""
        from safetensors.torch import load_file

        directory = Path(directory)
        cfg, base = read_config(directory)
        if not cfg.hf_path:
            raise QFunctionError(f"{directory} holds tokenq's own Q-network; load it with QNetwork.from_pretrained")
        if cfg.lora_rank == 0 and cfg.train_layers < 0:
            if lm is not None:
                raise QFunctionError(f"{directory} holds a whole fine-tuned model; give lm only with a trained part")
            lm = load_causal_lm(str(directory))
        net = cls(cfg, lm=lm)
        if net.partial:
            check_base(base or {}, net.base_reference(), directory)
        if cfg.lora_rank > 0:
            load_adapters(net.lm, directory)
        result = nn.Module.load_state_dict(net, load_file(directory / HEADS_FILE), strict=False)
        missing = [k for k in result.missing_keys if not k.startswith(("lm.", "ref_top."))]
        if missing or result.unexpected_keys:
            raise QFunctionError(f"the heads in {directory} do not fit its config (missing {missing[:2]})")
        return net

    def export_model(self) -> nn.Module:
        """The LM as a standard transformers model whose greedy policy is Q's (tokenq/export.py says what its head
        computes): adapters merged into their layers, a trained top copied into the model's top blocks, a separate
        Q head in place of the LM head. Like peft's merge_and_unload it works in place: the network is not used
        after it."""
        if self.token_bias is not None:
            raise QFunctionError(
                "this run learned a per-token bias (hf.token_bias), which no standard LM head holds; export runs "
                "trained without it"
            )
        lm = merge_lora(self.lm)
        if self.split and self.cfg.train_layers > 0:
            layers, norm = trunk.body_blocks(lm.base_model)
            k = len(layers) - self.cfg.train_layers
            for i, block in enumerate(self.top["layers"]):
                layers[k + i].load_state_dict(block.state_dict())
            norm.load_state_dict(self.top["norm"].state_dict())
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

    def q_values(
        self, h: torch.Tensor, logits: torch.Tensor | None = None, ref_logits: torch.Tensor | None = None
    ) -> torch.Tensor:
        """h (B, [T,] D) final hidden states -> Q (B, [T,] V); `logits`: the LM head's output at h, where it is
        already computed (the reference's, when the top is empty); `ref_logits`: the reference's (q_head=soft)."""
        if self.q_head is not None:
            q = self.q_head(h)
        else:
            q = logits if logits is not None else self.lm.get_output_embeddings()(h)
            if self.cfg.q_head == "soft":
                return self.soft_q(h, q, ref_logits)
            if self.v_head is not None:
                q = self.v_head(h) + q - q.amax(-1, keepdim=True)
        return q if self.token_bias is None else q + self.token_bias

    def soft_q(self, h: torch.Tensor, logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
        """q_head=soft: Q = V(s) + beta (log pi(.|s) - log pi_ref(.|s)), pi the trained top's softmax (its logits
        plus token_bias / beta). Both are normalised, so beta log sum_a pi_ref exp(Q / beta) = V(s) exactly: raising
        one token's Q lowers the others' by the mass it takes, and a token the learner never tried cannot gain.
        The token bias is kept <= 0 (param_groups): it is one number per token for every state, so a positive one
        would raise a token everywhere it was once found good ("Kakakak..."); kept non-positive, it can only take
        mass from tokens (a banned letter) and hand it to the model's likely ones, as a mask does. Raising a token
        in its context is the trained top's work."""
        beta = self.cfg.soft_beta
        z = logits.float() if self.token_bias is None else logits.float() + self.token_bias / beta
        shift = torch.log_softmax(z, -1) - torch.log_softmax(ref_logits.float(), -1)
        return beta * shift + self.v_head(h).float()

    # ----- running the body: whole, or as a frozen trunk and tops (learner/trunk.py) -----
    def _layout(self, prompts: torch.Tensor, actions: torch.Tensor | None) -> trunk.Layout:
        return trunk.layout(prompts, actions, self._prefix, pad_id=0)

    def _frozen_prefix(self, part: str, x: torch.Tensor, embeds: bool) -> tuple[torch.Tensor, trunk.KV]:
        """The prefix through a part that never changes (the trunk, the reference top), computed once per device."""
        key = (part, str(x.device))
        if key not in self._frozen:
            with torch.no_grad():
                self._frozen[key] = trunk.prefix_pass(self._views[part], x, embeds)
        return self._frozen[key]

    def trunk_pass(self, prompts: torch.Tensor, actions: torch.Tensor | None, keep: bool = False) -> trunk.TrunkOut:
        """The frozen trunk over prompts (and actions), under no_grad; `keep`: with a cache for further steps."""
        lay = self._layout(prompts, actions)
        with torch.no_grad():
            pre = self._frozen_prefix("trunk", self._prefix.to(prompts.device)[None], False) if lay.prefix else None
            cache = trunk.expand(pre[1], len(prompts)) if pre else (trunk.expand(None, 0) if keep else None)
            h = trunk.run(self._views["trunk"], lay.ids, lay, cache, embeds=False)
        return trunk.TrunkOut(lay, h, pre[0] if pre else None, cache)

    def _top(self, part: str, t: trunk.TrunkOut, keep: bool = False) -> tuple[torch.Tensor, object]:
        """A top ("top": the online one, "ref": the reference's) over the trunk's output; the trunk's own output
        when the top is empty (hf.train_layers=0)."""
        if self.cfg.train_layers == 0:
            return t.h, None
        view, B = self._views[part], len(t.h)
        cache = trunk.expand(None, 0) if keep else None
        if t.lay.prefix:
            if part == "ref":
                _, kv = self._frozen_prefix("ref", t.h_prefix, True)
            else:  # the online top changes with every update: its prefix is computed again, at batch 1
                _, kv = trunk.prefix_pass(view, t.h_prefix, True)
            cache = trunk.expand(kv, B)
        with torch.no_grad() if part == "ref" else nullcontext():
            return trunk.run(view, t.h, t.lay, cache, embeds=True), cache

    def _whole(self, lay: trunk.Layout, keep: bool) -> tuple[torch.Tensor, object]:
        """The whole body (with any adapters) over a layout, from the prefix's cache where it has one."""
        cache = trunk.expand(None, 0) if keep else None
        with self._mode():
            if lay.prefix:
                body = self.lm.base_model
                _, kv = trunk.prefix_pass(body, self._prefix.to(lay.ids.device)[None], False)
                cache = trunk.expand(kv, len(lay.ids))
            return trunk.run(self.lm.base_model, lay.ids, lay, cache, embeds=False), cache

    def _heads(self, h: torch.Tensor, h_ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Q and log pi_ref at the last position, from the online top's and the reference top's hidden states."""
        ref_logits = self.lm.get_output_embeddings()(h_ref)
        q = self.q_values(h, ref_logits if h is h_ref else None, ref_logits)
        return q, torch.log_softmax(ref_logits.float(), -1)

    def forward(
        self,
        prompts: torch.Tensor,
        actions: torch.Tensor,
        trunk_out: trunk.TrunkOut | None = None,
        ref_logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """prompts (B, P) right-padded with -1, actions (B, T) -> Q(s_t, .) for t = 0..T: (B, T+1, V).
        `trunk_out`, `ref_logits`: the frozen trunk's output for them and the reference's logits (B, T+1, V), where
        they are already computed (q_pair)."""
        if self.split:
            t = trunk_out if trunk_out is not None else self.trunk_pass(prompts, actions)
            h, _ = self._top("top", t)
            if self.cfg.q_head == "soft" and ref_logits is None:
                ref_logits = self.reference_logits(t)
            h = h[:, t.lay.prompt_end :]
            return self.q_values(h, ref_logits if self.cfg.train_layers == 0 else None, ref_logits)
        lay = self._layout(prompts, actions)
        h, _ = self._whole(lay, keep=False)
        return self.q_values(h[:, lay.prompt_end :])  # (B, T+1, V)

    def reference_logits(self, t: trunk.TrunkOut) -> torch.Tensor:
        """The reference model's logits (B, T+1, V) at the generated positions, from the trunk's output, no_grad."""
        with torch.no_grad():
            h_ref, _ = self._top("ref", t)
            return self.lm.get_output_embeddings()(h_ref[:, t.lay.prompt_end :])

    def q_pair(self, target: Target, prompts: torch.Tensor, actions: torch.Tensor):
        """(online Q, target Q under no_grad, each (B, T+1, V), and log pi_ref (B, T+1, V) where the network holds a
        reference the backup reads: q_head=soft's, from the frozen trunk's reference top, else None); with a frozen
        trunk, from one trunk pass."""
        kwargs = {"trunk_out": self.trunk_pass(prompts, actions)} if self.split else {}
        soft = self.cfg.q_head == "soft"
        if soft:
            kwargs["ref_logits"] = self.reference_logits(kwargs["trunk_out"])
        q = self(prompts, actions, **kwargs)
        with torch.no_grad():
            log_ref = torch.log_softmax(kwargs["ref_logits"].float(), -1) if soft else None
            return q, target(prompts, actions, **kwargs), log_ref

    def reference_log_probs(self, cache: HFDecodeCache) -> torch.Tensor | None:
        """log pi_ref(. | s_t) (B, V) at the state `start` or `step` last computed, where the network computes it
        (a frozen trunk's reference top); None otherwise."""
        return cache.ref_logp

    @torch.no_grad()
    def start(self, prompts: torch.Tensor, max_new: int) -> tuple[torch.Tensor, HFDecodeCache]:
        """Prefill the prompts into the model's KV cache (from the prefix's cache); Q(s_0, .) (B, V)."""
        if not self.split:
            lay = self._layout(prompts, None)
            h, past = self._whole(lay, keep=True)
            return self.q_values(h[:, -1]), HFDecodeCache(past, lay.mask, lay.positions[:, -1] + 1)
        t = self.trunk_pass(prompts, None, keep=True)
        h, top_cache = self._top("top", t, keep=True)
        h_ref, ref_cache = self._top("ref", t, keep=True)
        q, ref = self._heads(h[:, -1], h_ref[:, -1])
        past = (t.cache, top_cache, ref_cache)
        return q, HFDecodeCache(past, t.lay.mask, t.lay.positions[:, -1] + 1, ref)

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, cache: HFDecodeCache) -> torch.Tensor:
        """Append one token per sequence (B,) and return Q of the new state (B, V): one position of compute."""
        cache.attention_mask = torch.cat([cache.attention_mask, torch.ones_like(tokens)[:, None]], dim=1)
        lay = trunk.Layout(tokens[:, None], cache.attention_mask, cache.next_pos[:, None], 0, 0)
        cache.next_pos = cache.next_pos + 1
        if not self.split:
            with self._mode():
                h = trunk.run(self.lm.base_model, lay.ids, lay, cache.past, embeds=False)
            return self.q_values(h[:, -1])
        trunk_cache, top_cache, ref_cache = cache.past
        h = trunk.run(self._views["trunk"], lay.ids, lay, trunk_cache, embeds=False)
        if self.cfg.train_layers == 0:
            h_top = h_ref = h
        else:
            h_top = trunk.run(self._views["top"], h, lay, top_cache, embeds=True)
            h_ref = trunk.run(self._views["ref"], h, lay, ref_cache, embeds=True)
        q, cache.ref_logp = self._heads(h_top[:, -1], h_ref[:, -1])
        return q
