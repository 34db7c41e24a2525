"""`tokenq export`: a run on a Hugging Face model as a standard model directory whose greedy policy is tokenq's.

What the exported LM head computes, by model.q_head:
- "plain": Q itself (the trained LM head is the Q head).
- "separate": Q itself (the Q head replaces the LM head, untied from the input embeddings).
- "dueling_max": Q - V(s) + max logits, i.e. Q up to a per-state constant that no standard LM head can add. Greedy
  decoding (argmax) and softmax sampling are those of Q exactly; the numbers are Q's advantages over V(s).
`AutoModelForCausalLM.from_pretrained(DIR).generate(do_sample=False)` then produces tokenq's greedy policy: the
generation config stops at the tokenizer's EOS after at most task.max_length new tokens, as tokenq's episodes do.
LoRA adapters are merged into the weights they adapt (W + B A alpha / r): the directory is a plain model. The
network itself writes it (`QFunction.export_model`); `--adapters` writes the network's own `save_pretrained`
directory instead (peft's adapter files, the heads and tokenq's config), which `HFQNetwork.from_pretrained` reads.

`tokenq hf-import FILE.gguf --out DIR` writes a GGUF model as such a directory (float32 safetensors and the
tokenizer), so that the slow GGUF dequantization happens once.
"""

from __future__ import annotations

from pathlib import Path

import torch

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


def export_run(run_dir: Path, out: Path, checkpoint: Path | None = None, adapters: bool = False) -> dict:
    """The run's newest (or given) checkpoint as a standard model directory, or with `adapters` as the network's
    save_pretrained directory; the tokenizer beside it either way."""
    from tokenq.evaluate_run import load_run

    out = Path(out)
    _check_out(out)
    spec, net, state, path = load_run(Path(run_dir), checkpoint)
    if adapters:
        net.save_pretrained(out)
        architecture = net.describe()
    else:
        lm = net.export_model()
        _save_merged(lm, spec.task, out)
        architecture = type(lm).__name__
    spec.task.tokenizer.save_pretrained(out)
    return {
        "out": str(out),
        "checkpoint": str(path),
        "q_head": spec.net_cfg.q_head,
        "learner_updates": state.updates,
        "architecture": architecture,
    }


def _save_merged(lm, task, out: Path) -> None:
    """The exported LM with a generation config that stops as the task's episodes do."""
    gen = lm.generation_config
    gen.eos_token_id = task.tokenizer.eos_id
    gen.pad_token_id = task.tokenizer.pad_id
    gen.max_new_tokens = task.max_steps
    gen.do_sample = False
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        lm.save_pretrained(out)
