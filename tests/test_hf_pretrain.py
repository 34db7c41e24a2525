"""`pretrain.hf_arch: llama`: a tiny Llama and its BPE tokenizer trained from scratch, saved as a directory that
AutoModelForCausalLM and AutoTokenizer load, and trained for real (held-out perplexity far below uniform)."""

import json
import math

import pytest
import torch

pytest.importorskip("transformers")

from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM  # noqa: E402

from actors.corpus.grammar import generate_corpus  # noqa: E402
from actors.hf_text import HFTokenizer  # noqa: E402
from actors.text_task import keywords_prompt  # noqa: E402
from tokenq.config import ConfigError, load_config  # noqa: E402
from tokenq.hf_pretrain import continuation_loss, make_batch  # noqa: E402
from tokenq.pretrain import pretrain  # noqa: E402

TINY = [
    "model.d_model=32",
    "model.n_layers=1",
    "model.n_heads=2",
    "task.vocab_size=300",
    "task.corpus_sentences=2000",
    "pretrain.heldout_sentences=100",
]
STEPS = 60  # with 1 step the perplexities stay near the vocabulary size (~290) and the checks below fail


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("hf")
    summary = pretrain(load_config("hf-small", [f"pretrain.steps={STEPS}", *TINY]), run_dir)
    return run_dir, summary


def perplexity(model, tok, sentences: list[str]) -> float:
    """Per-token perplexity of the sentences (EOS included) after one keywords prompt."""
    hf = HFTokenizer(tok, len(tok))
    prompt = hf.encode_prompt(keywords_prompt(["old", "man"]))
    conts = [hf.encode(" " + s) + [hf.eos_id] for s in sentences]
    with torch.no_grad():
        ce, n = continuation_loss(model.eval(), make_batch([prompt] * len(conts), conts, hf.pad_id))
    return math.exp(float(ce) / n)


def test_saved_directory_loads_with_auto_classes(run):
    run_dir, summary = run
    model = AutoModelForCausalLM.from_pretrained(run_dir / "hf")
    tok = AutoTokenizer.from_pretrained(run_dir / "hf")
    assert isinstance(model, LlamaForCausalLM)
    assert model.config.vocab_size == len(tok) == summary["vocab_size"] == 300
    assert tok.eos_token == "<eos>" and model.config.eos_token_id == tok.eos_token_id
    assert (tok.bos_token, tok.pad_token) == ("<bos>", "<pad>")
    text = "the old man sells fish ."
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    assert summary["num_parameters"] == model.num_parameters()
    assert json.loads((run_dir / "pretrain_summary.json").read_text()) == summary
    assert json.loads((run_dir / "config.json").read_text())["pretrain"]["hf_arch"] == "llama"


def test_training_lowers_perplexity_far_below_uniform(run):
    run_dir, summary = run
    vocab = summary["vocab_size"]
    assert summary["heldout_perplexity"] < vocab / 4
    # The saved weights are the trained ones: on fresh grammar sentences the loaded model beats its own
    # architecture at initialisation (perplexity near the vocabulary size) by far.
    model = AutoModelForCausalLM.from_pretrained(run_dir / "hf")
    tok = AutoTokenizer.from_pretrained(run_dir / "hf")
    sentences = [s for s in generate_corpus(200, seed=1) if len(tok.encode(" " + s)) < 31][:64]
    torch.manual_seed(0)
    untrained = LlamaForCausalLM(model.config)
    assert perplexity(untrained, tok, sentences) > vocab / 2
    assert perplexity(model, tok, sentences) < vocab / 4


def test_cli_pretrains_and_points_to_the_hf_directory(tmp_path, capsys):
    from tokenq.cli import main

    run_dir = tmp_path / "run"
    assert main(["pretrain", "--config", "hf-small", "--run-dir", str(run_dir), "pretrain.steps=2", *TINY]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].endswith(f"use init.from_hf={run_dir / 'hf'}")
    assert (run_dir / "hf" / "model.safetensors").exists()


def test_unknown_hf_arch_is_refused():
    with pytest.raises(ConfigError, match="pretrain.hf_arch must be"):
        load_config("hf-small", ["pretrain.hf_arch=gpt2"])
