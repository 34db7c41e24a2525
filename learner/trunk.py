"""How a Hugging Face Q-network (learner/hf.py) runs its body in parts: a prompt prefix shared by every prompt, kept
as a KV cache, and with hf.train_layers=N a frozen trunk whose output feeds three tops.

- The trunk is the embeddings and the bottom L - N blocks, frozen, run once per batch under no_grad.
- Its hidden states feed the online top (N blocks and the final norm, trained), the target's top (a copy of the
  trained part) and the reference model's top (the original N blocks, frozen): Q, its Double-DQN target and
  log pi_ref from one trunk pass, as ILQL's heads and Q#'s value model sit beside a frozen LM.

A part is a *view* of the model's body (`lm.base_model`): the same class and forward, with its own `layers` and
`norm` and a config that counts its own layers. A top is fed the trunk's hidden states as `inputs_embeds`. Each
top's blocks are copies numbered from 0 (their attention's `layer_idx`), so that each part keeps a cache of its own.
`check_split` runs the parts against the whole model once, and refuses a body that cannot be split so.

The prefix (the chat template's system turn, `QNetConfig.prefix_ids`) is run once at batch 1 into each part's keys
and values (`prefix_pass`); a batch then starts from that cache, expanded to its rows (`expand`), and computes only
the rest of its prompts.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import torch
import torch.nn as nn

KV = list[tuple[torch.Tensor, torch.Tensor]]  # one (keys, values) pair per block, batch 1


class SplitError(ValueError):
    """A model whose body cannot run as trunk and top; one sentence."""


def body_blocks(body: nn.Module) -> tuple[nn.ModuleList, nn.Module]:
    """The body's blocks and final norm, or one sentence."""
    layers, norm = getattr(body, "layers", None), getattr(body, "norm", None)
    if not isinstance(layers, nn.ModuleList) or not isinstance(norm, nn.Module):
        raise SplitError(
            f"hf.train_layers needs a body with `layers` and a final `norm` (as Llama, Mistral and Qwen2 have); "
            f"{type(body).__name__} has not"
        )
    return layers, norm


def body_view(body: nn.Module, layers: nn.ModuleList, norm: nn.Module, which: slice) -> nn.Module:
    """`body` running `layers` and then `norm`; `which`: the original blocks they stand for (for per-layer config
    lists). Shares every other submodule (embeddings, rotary tables) with `body`."""
    view = copy.copy(body)
    view._modules = dict(body._modules)  # its own table of submodules, holding the same modules but these two
    view._modules["layers"], view._modules["norm"] = layers, norm
    config = copy.copy(body.config)
    config.num_hidden_layers = len(layers)
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = config.layer_types[which]
    view.config = config
    return view


def renumbered(blocks: nn.ModuleList) -> nn.ModuleList:
    """A copy of `blocks` whose attention layers index a cache from 0."""
    out = copy.deepcopy(blocks)
    for i, block in enumerate(out):
        for m in block.modules():
            if hasattr(m, "layer_idx"):
                m.layer_idx = i
    return out


@dataclass
class Layout:
    """A batch of prompts (and actions) as the body reads it: the shared prefix from a cache (`prefix` of its
    tokens, 0 when it is not used), the rest of each prompt left-padded so that every prompt ends at column
    `prompt_end`, then the actions."""

    ids: torch.Tensor  # (B, R [+ T]) the tokens to compute: the prompts' rest and the actions
    mask: torch.Tensor  # (B, prefix + R [+ T]) attention mask over the cached prefix and the new tokens
    positions: torch.Tensor  # (B, R [+ T]) position ids of the new tokens
    prefix: int
    prompt_end: int  # column of the last prompt token in ids


def layout(prompts: torch.Tensor, actions: torch.Tensor | None, prefix: torch.Tensor | None, pad_id: int) -> Layout:
    """prompts (B, P) right-padded with -1; the prefix is used when every prompt starts with it and goes on past it."""
    n = 0
    if prefix is not None and 0 < len(prefix) < prompts.shape[1]:
        p = len(prefix)
        if bool((prompts[:, :p] == prefix.to(prompts.device)).all()) and bool((prompts[:, p] >= 0).all()):
            n = p
    rest = prompts[:, n:]
    lengths = (rest >= 0).sum(1)
    rest = rest[:, : int(lengths.max())]  # columns of padding alone cost compute and change nothing
    B, R = rest.shape
    src = torch.arange(R, device=rest.device)[None, :] - (R - lengths)[:, None]  # column j holds token src
    keep = src >= 0
    ids = rest.gather(1, src.clamp(min=0)).masked_fill(~keep, pad_id)
    mask = torch.cat([torch.ones(B, n, dtype=torch.long, device=ids.device), keep.long()], dim=1)
    if actions is not None:
        ids = torch.cat([ids, actions], dim=1)
        mask = torch.cat([mask, torch.ones_like(actions)], dim=1)
    positions = (mask.cumsum(1) - 1).clamp(min=0)[:, n:]
    return Layout(ids, mask, positions, n, R - 1)


def run(view: nn.Module, x: torch.Tensor, lay: Layout, cache, embeds: bool) -> torch.Tensor:
    """The view's hidden states for the new tokens; `x` ids or (embeds=True) a trunk's hidden states; `cache` (a
    transformers Cache or None) is read and extended in place."""
    from transformers.cache_utils import Cache

    inputs = {"inputs_embeds": x} if embeds else {"input_ids": x}
    kwargs = {_cache_arg(view): cache} if isinstance(cache, Cache) else {}
    out = view(attention_mask=lay.mask, position_ids=lay.positions, use_cache=cache is not None, **inputs, **kwargs)
    return out.last_hidden_state


@functools.cache
def _cache_arg_of(body_class: type) -> str:
    """transformers 5 names the cache argument `cache`, 4.x `past_key_values`: looked up once per class."""
    import inspect

    return "cache" if "cache" in inspect.signature(body_class.forward).parameters else "past_key_values"


def _cache_arg(view: nn.Module) -> str:
    return _cache_arg_of(type(view))


def prefix_pass(view: nn.Module, x: torch.Tensor, embeds: bool) -> tuple[torch.Tensor, KV]:
    """The prefix (1, p) ids, or hidden states (1, p, D), through `view`: its hidden states and its keys and values."""
    from transformers import DynamicCache

    p = x.shape[1]
    ones = torch.ones(1, p, dtype=torch.long, device=x.device)
    lay = Layout(x, ones, torch.arange(p, device=x.device)[None], 0, p - 1)
    cache = DynamicCache()
    h = run(view, x, lay, cache, embeds)
    return h, [(layer.keys, layer.values) for layer in cache.layers]


def expand(kv: KV | None, batch: int):
    """A fresh cache holding the prefix's keys and values for each of `batch` rows (an empty one for no prefix)."""
    from transformers import DynamicCache

    if not kv:
        return DynamicCache()
    return DynamicCache(ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in kv])


@dataclass
class TrunkOut:
    """The frozen trunk's output for a batch: what every top reads."""

    lay: Layout
    h: torch.Tensor  # (B, R + T, D)
    h_prefix: torch.Tensor | None  # (1, p, D): the prefix's, from the cache
    cache: object = None  # the trunk's KV cache, where the caller keeps one for further steps
