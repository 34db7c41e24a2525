"""The token-level Q-network: Q(s_t, .) for every vocabulary token at every generated position.

Two shapes (docs/design.md):
- "encdec": a bidirectional encoder reads the prompt; a causal decoder over [BOS, a_0, ..., a_{T-1}] with
  cross-attention to the encoder outputs Q(s_0), ..., Q(s_T).
- "decoder": one causal stack over [prompt, SEP, a_0, ..., a_{T-1}]; the outputs from SEP on are Q(s_0), ...

`forward` scores whole sequences (the learner: one pass gives Q for every step of an episode); `start` and `step`
decode incrementally with a preallocated KV cache (the actors: a token's cost does not grow with the text
generated so far beyond the attention read itself).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from learner.config import LearnerConfig, QNetConfig
from learner.qfunction import QFunction, QFunctionError, read_config, write_config

WEIGHTS_FILE = "qnetwork.pt"  # save_pretrained's state dict (torch.save; read back with weights_only=True)


class Attention(nn.Module):
    """Multi-head attention; keys/values come from `x` (self) or from a precomputed memory (cross)."""

    def __init__(self, d: int, n_heads: int, cross: bool):
        super().__init__()
        self.n_heads, self.cross = n_heads, cross
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.proj = nn.Linear(d, d)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        return x.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2)  # (B, H, T, hd)

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(memory).chunk(2, dim=-1)
        return self.split(k), self.split(v)

    def forward(self, x, kv=None, causal=False, cache=None, pos=0):
        """x (B, T, D). Self-attention with `cache` writes this call's keys/values at [pos, pos+T) and attends
        over [0, pos+T); cross-attention takes `kv` = memory_kv(memory)."""
        B, T, D = x.shape
        q = self.split(self.q(x))
        if self.cross:
            k, v = kv
        else:
            k, v = self.memory_kv(x)
            if cache is not None:
                cache[0][:, :, pos : pos + T] = k
                cache[1][:, :, pos : pos + T] = v
                k, v = cache[0][:, :, : pos + T], cache[1][:, :, : pos + T]
                # One new query sees every cached key; a prefill from 0 is an ordinary causal pass.
                causal = causal and T > 1
                assert T == 1 or pos == 0, "multi-token steps are only supported as a prefill from position 0"
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)  # (B, H, T, hd)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    """Pre-norm block: self-attention, optional cross-attention to the prompt encoding, MLP."""

    def __init__(self, cfg: QNetConfig, causal: bool, cross: bool):
        super().__init__()
        d = cfg.d_model
        self.causal = causal
        self.ln1 = nn.LayerNorm(d)
        self.attn = Attention(d, cfg.n_heads, cross=False)
        self.ln_x = nn.LayerNorm(d) if cross else None
        self.xattn = Attention(d, cfg.n_heads, cross=True) if cross else None
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, cfg.mlp_ratio * d), nn.GELU(), nn.Linear(cfg.mlp_ratio * d, d))

    def forward(self, x, memory_kv=None, cache=None, pos=0):
        x = x + self.attn(self.ln1(x), causal=self.causal, cache=cache, pos=pos)
        if self.xattn is not None:
            x = x + self.xattn(self.ln_x(x), kv=memory_kv)
        return x + self.mlp(self.ln2(x))


class DecodeCache:
    """Per-layer preallocated self-attention keys/values (and cross-attention memory) for incremental decoding."""

    def __init__(self, kv: list[tuple[torch.Tensor, torch.Tensor]], memory_kv: list, pos: int, prompts: torch.Tensor):
        self.kv, self.memory_kv, self.pos, self.prompts = kv, memory_kv, pos, prompts


class QNetwork(nn.Module):
    def __init__(self, cfg: QNetConfig):
        super().__init__()
        if cfg.arch not in ("encdec", "decoder"):
            raise ValueError(f"model.arch must be 'encdec' or 'decoder', got {cfg.arch!r}")
        if cfg.d_model % cfg.n_heads:
            raise ValueError(f"model.d_model ({cfg.d_model}) must be divisible by model.n_heads ({cfg.n_heads})")
        self.cfg = cfg
        d = cfg.d_model
        self.tok_emb = nn.Embedding(cfg.vocab_size, d)
        encdec = cfg.arch == "encdec"
        if encdec:
            self.enc_pos = nn.Embedding(cfg.max_prompt_len, d)
            self.encoder = nn.ModuleList(Block(cfg, causal=False, cross=False) for _ in range(cfg.n_enc_layers))
            self.enc_ln = nn.LayerNorm(d)
            self.dec_pos = nn.Embedding(cfg.max_gen_len + 1, d)
        else:
            self.dec_pos = nn.Embedding(cfg.max_prompt_len + cfg.max_gen_len + 1, d)
        self.decoder = nn.ModuleList(Block(cfg, causal=True, cross=encdec) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.vocab_size)
        if cfg.q_head in ("separate", "soft"):
            raise ValueError(
                f"model.q_head={cfg.q_head} is for Hugging Face models; tokenq's network has its own Q head"
            )
        self.value_head = nn.Linear(d, 1) if cfg.q_head in ("dueling", "dueling_max") else None
        self.copy_gate = nn.Linear(d, 1) if cfg.copy_head else None
        self.apply(self._init_weights)
        if cfg.tie_embeddings:
            self.head.weight = self.tok_emb.weight
        if self.value_head is not None:  # V(s) starts at 0: a warm start's Q is then its advantages alone
            nn.init.zeros_(self.value_head.weight)
        if self.copy_gate is not None:  # the pointer starts closed: a warm start's greedy policy is unchanged
            nn.init.zeros_(self.copy_gate.weight)
        self.start_id = cfg.bos_id if encdec else cfg.sep_id

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ----- the QFunction interface beyond acting and forward (learner/qfunction.py) -----
    def make_target(self) -> QNetwork:
        """A frozen copy of the whole network."""
        return copy.deepcopy(self).requires_grad_(False)

    def param_groups(self, cfg: LearnerConfig) -> list[dict]:
        """One group: every parameter trains at learner.lr."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def base_reference(self) -> None:
        """None: the state dict is the whole network, with no base model beneath it."""
        return None

    def enable_grad_checkpointing(self) -> None:
        raise QFunctionError("hf.grad_checkpointing needs a Hugging Face model (init.from_hf)")

    def describe(self) -> str:
        return self.cfg.arch

    def save_pretrained(self, directory: str | Path) -> None:
        """The config (learner/qfunction.py's CONFIG_FILE) and the state dict (WEIGHTS_FILE)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_config(directory, self.cfg, None)
        torch.save(self.state_dict(), directory / WEIGHTS_FILE)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> QNetwork:
        cfg, _ = read_config(Path(directory))
        if cfg.hf_path:
            raise QFunctionError(f"{directory} holds a Hugging Face Q-network; load it with HFQNetwork.from_pretrained")
        net = cls(cfg)
        net.load_state_dict(torch.load(Path(directory) / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        return net

    def export_model(self) -> nn.Module:
        raise QFunctionError(
            "tokenq export writes Hugging Face models, and this is tokenq's own network (export needs a run with "
            "init.from_hf)"
        )

    def _q_head(self, h: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        """h (B, [T,] D) -> Q (B, [T,] V); prompts (B, P) for the copy head."""
        h = self.ln_f(h)
        q = self.head(h)
        if self.value_head is not None:
            centre = q.amax(-1, keepdim=True) if self.cfg.q_head == "dueling_max" else q.mean(-1, keepdim=True)
            q = self.value_head(h) + q - centre
        if self.copy_gate is not None:
            idx = prompts if q.dim() == 2 else prompts[:, None, :].expand(-1, q.shape[1], -1)  # (B, [T,] P)
            gate = self.copy_gate(h)  # (B, [T,] 1)
            q = q.scatter_add(-1, idx, gate.expand(*idx.shape).to(q.dtype))
        return q

    def _encode(self, prompts: torch.Tensor) -> list:
        x = self.tok_emb(prompts) + self.enc_pos(torch.arange(prompts.shape[1], device=prompts.device))
        for block in self.encoder:
            x = block(x)
        memory = self.enc_ln(x)  # (B, P, D)
        return [block.xattn.memory_kv(memory) for block in self.decoder]

    def _decoder_input(self, prompts: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        start = torch.full_like(prompts[:, :1], self.start_id)
        if self.cfg.arch == "encdec":
            return torch.cat([start, actions], dim=1)
        return torch.cat([prompts, start, actions], dim=1)

    def forward(self, prompts: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """prompts (B, P), actions (B, T) -> Q(s_t, .) for t = 0..T: (B, T+1, V)."""
        memory_kv = self._encode(prompts) if self.cfg.arch == "encdec" else [None] * len(self.decoder)
        tokens = self._decoder_input(prompts, actions)
        x = self.tok_emb(tokens) + self.dec_pos(torch.arange(tokens.shape[1], device=tokens.device))
        for block, mkv in zip(self.decoder, memory_kv, strict=False):
            x = block(x, memory_kv=mkv)
        if self.cfg.arch == "decoder":
            x = x[:, prompts.shape[1] :]
        return self._q_head(x, prompts)

    def q_pair(self, target: QNetwork, prompts: torch.Tensor, actions: torch.Tensor):
        """(online Q, target Q under no_grad, each (B, T+1, V), and None: no reference model, so the soft backup's
        pi_ref is uniform): two passes, as the networks share nothing."""
        q = self(prompts, actions)
        with torch.no_grad():
            return q, target(prompts, actions), None

    def reference_log_probs(self, cache: DecodeCache) -> None:
        """tokenq's own network holds no reference model."""
        return None

    @torch.no_grad()
    def start(self, prompts: torch.Tensor, max_new: int) -> tuple[torch.Tensor, DecodeCache]:
        """Encode the prompts and return Q(s_0, .) (B, V) with a cache sized for `max_new` more tokens."""
        B, P = prompts.shape
        H, D = self.cfg.n_heads, self.cfg.d_model
        total = max_new + 1 + (P if self.cfg.arch == "decoder" else 0)
        shape, dtype = (B, H, total, D // H), self.head.weight.dtype
        kv = [(prompts.new_zeros(shape, dtype=dtype), prompts.new_zeros(shape, dtype=dtype)) for _ in self.decoder]
        memory_kv = self._encode(prompts) if self.cfg.arch == "encdec" else [None] * len(self.decoder)
        cache = DecodeCache(kv, memory_kv, pos=0, prompts=prompts)
        tokens = self._decoder_input(prompts, prompts[:, :0])
        return self._advance(tokens, cache), cache

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, cache: DecodeCache) -> torch.Tensor:
        """Append one token per sequence (B,) and return Q of the new state (B, V)."""
        return self._advance(tokens[:, None], cache)

    def _advance(self, tokens: torch.Tensor, cache: DecodeCache) -> torch.Tensor:
        T = tokens.shape[1]
        x = self.tok_emb(tokens) + self.dec_pos(torch.arange(cache.pos, cache.pos + T, device=tokens.device))
        for block, layer_kv, mkv in zip(self.decoder, cache.kv, cache.memory_kv, strict=False):
            x = block(x, memory_kv=mkv, cache=layer_kv, pos=cache.pos)
        cache.pos += T
        return self._q_head(x[:, -1], cache.prompts)


def make_network(cfg: QNetConfig, share_lm: QFunction | None = None) -> QFunction:
    """tokenq's own Transformer, or a Hugging Face causal LM with Q heads when `cfg.hf_path` names one.

    `share_lm`: a network already built (the task's fluency prior) whose language model the new one builds on where
    that is safe (HFQNetwork.build says when): one copy of the base model per process."""
    if cfg.hf_path:
        from learner.hf import HFQNetwork

        return HFQNetwork.build(cfg, share_lm)
    return QNetwork(cfg)
