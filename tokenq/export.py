"""`tokenq export`: a run on a Hugging Face model as a standard model directory whose greedy policy is tokenq's.

What the exported LM head computes, by model.q_head:
- "plain": Q itself (the trained LM head is the Q head).
- "separate": Q itself (the Q head replaces the LM head, untied from the input embeddings).
- "dueling_max": Q - V(s) + max logits, i.e. Q up to a per-state constant that no standard LM head can add. Greedy
  decoding (argmax) and softmax sampling are those of Q exactly; the numbers are Q's advantages over V(s).
`AutoModelForCausalLM.from_pretrained(DIR).generate(do_sample=False)` then produces tokenq's greedy policy: the
generation config stops at the tokenizer's EOS after at most task.max_length new tokens, as tokenq's episodes do.
LoRA adapters are merged into the weights they adapt (W + B A alpha / r): the directory is a plain model.

`tokenq hf-import FILE.gguf --out DIR` writes a GGUF model as such a directory (float32 safetensors and the
tokenizer), so that the slow GGUF dequantization happens once.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from learner.lora import merge_lora
from tokenq.config import ConfigError


def _check_out(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out} already holds files; export into a new or empty directory")


def import_gguf(gguf: Path, out: Path) -> dict:
    """A .gguf file as a model directory that init.from_hf loads in a second."""
    from actors.hf_text import HFTokenizer
    from learner.hf import HFModelError, load_causal_lm

    out = Path(out)
    if not str(gguf).endswith(".gguf"):
        raise HFModelError(f"{gguf} is not a .gguf file")
    _check_out(out)
    lm = load_causal_lm(str(gguf))
    vocab = lm.get_output_embeddings().out_features
    tokenizer = HFTokenizer.load(str(gguf), vocab, "none")
    out.mkdir(parents=True, exist_ok=True)
    lm.save_pretrained(out)
    tokenizer.tok.save_pretrained(out)
    return {
        "out": str(out),
        "architecture": type(lm).__name__,
        "parameters": sum(p.numel() for p in lm.parameters()),
        "vocab_size": vocab,
    }


def export_run(run_dir: Path, out: Path, checkpoint: Path | None = None) -> dict:
    from tokenq.evaluate_run import load_run

    out = Path(out)
    _check_out(out)
    spec, net, state, path = load_run(Path(run_dir), checkpoint)
    if not spec.net_cfg.hf_path:
        raise ConfigError(
            f"tokenq export writes Hugging Face models; the run in {run_dir} trains tokenq's own network "
            "(export needs a run with init.from_hf)"
        )
    if net.token_bias is not None:
        raise ConfigError(
            f"the run in {run_dir} learned a per-token bias (model.token_bias), which no standard LM head holds; "
            "export runs trained without it"
        )
    lm = merge_lora(net.lm)
    if net.q_head is not None:
        head = nn.Linear(net.q_head.in_features, net.q_head.out_features, bias=net.q_head.bias is not None)
        head.load_state_dict(net.q_head.state_dict())
        lm.config.tie_word_embeddings = False  # the Q head is not the input embedding matrix
        if hasattr(lm.config, "get_text_config"):
            lm.config.get_text_config().tie_word_embeddings = False
        lm.set_output_embeddings(head)
    task = spec.task
    gen = lm.generation_config
    gen.eos_token_id = task.tokenizer.eos_id
    gen.pad_token_id = task.tokenizer.pad_id
    gen.max_new_tokens = task.max_steps
    gen.do_sample = False
    lm.config.use_cache = True
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        lm.save_pretrained(out)
    task.tokenizer.tok.save_pretrained(out)
    return {
        "out": str(out),
        "checkpoint": str(path),
        "q_head": spec.net_cfg.q_head,
        "learner_updates": state.updates,
        "architecture": type(lm).__name__,
    }
