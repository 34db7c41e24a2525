"""Text end to end on tiny budgets: pretrain on the built-in corpus, Q-learn keywords from the warm start,
generate, evaluate against the baseline; and the `article` preset on this task in local multi-process mode."""

import json
import math

import numpy as np
import pytest
import torch
from procs import run_cli

from actors.rollout import generate
from tokenq.cli import main
from tokenq.config import load_config
from tokenq.evaluate_run import evaluate_run, generate_one, load_run
from tokenq.pretrain import pretrain
from tokenq.serial import train_serial

SMALL = [
    "task.corpus_sentences=3000",
    "pretrain.steps=30",
    "pretrain.heldout_sentences=200",
    "model.d_model=32",
    "model.n_layers=1",
]


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("lm")
    summary = pretrain(load_config("keywords", SMALL), run)
    # better than a uniform guess over the vocabulary, whose perplexity is the vocabulary's size
    assert summary["vocab_size"] > 1000 and summary["heldout_perplexity"] < summary["vocab_size"]
    return run


def recounted_text_metrics(run_dir, num_prompts: int) -> tuple[float, float]:
    """(keyword coverage, prior perplexity) of a run's greedy generations on its held-out prompts, counted one
    episode at a time: the share of the prompt's keywords among the generated tokens, and exp of the mean -log p of
    every generated token (EOS included) under the prior, from one unpadded forward pass per episode."""
    spec, net, _, _ = load_run(run_dir, num_prompts=num_prompts)
    batch = generate(net, spec.task, spec.heldout, 0.0, np.random.default_rng(0))  # what `tokenq eval` generates
    prior = spec.task.prior.net
    shares, nll, tokens = [], 0.0, 0
    for prompt, actions, n in zip(spec.heldout, batch.actions, batch.lengths.tolist()):
        generated = set(actions[:n].tolist())
        shares.append(sum(int(k) in generated for k in prompt) / len(prompt))
        with torch.no_grad():  # logits at the n positions that chose actions[0], ..., actions[n - 1]
            logits = prior(torch.as_tensor(prompt[None]), torch.as_tensor(actions[None, : n - 1]))[0]  # (n, V)
        logp = torch.log_softmax(logits.double(), dim=-1)
        nll -= sum(float(logp[t, a]) for t, a in enumerate(actions[:n].tolist()))
        tokens += n
    return float(np.mean(shares)), math.exp(nll / tokens)


def test_keywords_from_a_warm_start_reports_text_metrics(lm_run, tmp_path):
    cfg = load_config(
        "keywords",
        [f"init.from_run={lm_run}", "train.total_updates=10", "replay.min_size_to_sample=32", "task.eval_prompts=50"],
    )
    summary = train_serial(cfg, tmp_path, "keywords")
    ev = summary["eval"]
    for key in ("keyword_coverage", "prior_perplexity", "distinct_2", "mean_return"):
        assert key in ev and key in ev["baseline"], key
    result = evaluate_run(tmp_path, num_prompts=20)
    assert result["num_prompts"] == 20 and "baseline" in result
    coverage, perplexity = recounted_text_metrics(tmp_path, 20)
    assert result["keyword_coverage"] == pytest.approx(coverage, abs=1e-12)  # a multiple of 1 / (20 * 2)
    assert result["prior_perplexity"] == pytest.approx(perplexity, rel=1e-4)  # float32 batched against float64
    out = generate_one(tmp_path, "man house")
    n = len(out["tokens"])
    assert n >= 1 and all(len(out[k]) == n for k in ("values", "q_taken", "rewards"))
    # tokenq's own network exports as its save_pretrained directory (with the word vocabulary), not as a merged LM
    from actors.text import WordTokenizer
    from learner.model import QNetwork
    from tokenq.export import export_run

    export_run(tmp_path, tmp_path / "net", adapters=True)
    spec, net, _, _ = load_run(tmp_path)
    again = QNetwork.from_pretrained(tmp_path / "net")
    prompts, actions = torch.as_tensor(spec.heldout[:4]), torch.randint(5, spec.task.vocab_size, (4, 3))
    with torch.no_grad():
        assert torch.equal(again(prompts, actions), net(prompts, actions))
    assert WordTokenizer.load(tmp_path / "net" / "tokenizer.json").vocab == spec.task.tokenizer.vocab
    assert main(["export", "--run-dir", str(tmp_path), "--out", str(tmp_path / "merged")]) == 2


def test_bad_prompts_and_missing_warm_start_are_one_sentence(lm_run, tmp_path, capsys):
    bad = tmp_path / "prompts.txt"
    bad.write_text("man house\nman qqqzzz\n")
    cmd = ["train", "--mode", "serial", "--config", "keywords", "--run-dir", str(tmp_path / "r")]
    proc = run_cli(*cmd, f"init.from_run={lm_run}", f"task.prompts_file={bad}")
    assert proc.returncode == 2
    assert "prompts.txt line 2 ('man qqqzzz'): word 'qqqzzz' is not in the vocabulary" in proc.stderr
    # The same entry point in this process (the subprocess above shows the installed command's path).
    assert main(cmd) == 2 and "or init.from_run=DIR" in capsys.readouterr().err
    assert main(["generate", "--run-dir", str(lm_run), "--prompt", "man qqqzzz"]) == 2
    assert "word 'qqqzzz' is not in the vocabulary" in capsys.readouterr().err


@pytest.mark.slow
def test_article_preset_runs_keywords_in_local_mode(ray_local, tmp_path):
    from tokenq.build import build_spec
    from tokenq.local import train_local

    lm = tmp_path / "lm"
    pretrain(
        load_config(
            "article",
            [
                "task.name=keywords",
                "task.corpus_sentences=2000",
                "pretrain.steps=3",
                "pretrain.batch_size=8",
                "pretrain.heldout_sentences=100",
            ],
        ),
        lm,
    )
    saved = json.loads((lm / "config.json").read_text())["model"]
    assert (saved["d_model"], saved["n_heads"], saved["n_layers"], saved["arch"]) == (256, 8, 6, "encdec")
    cfg = load_config(
        "article",
        [
            "task.name=keywords",
            f"init.from_run={lm}",
            "train.total_updates=4",
            "replay.min_size_to_sample=16",
            "actors.batch_size=8",
            "learner.batch_size=8",
            "train.eval_every=2",
            "task.eval_prompts=16",
            "actors.explore=softmax",
        ],
    )
    summary = train_local(cfg, tmp_path / "run", "article", build_spec(cfg))
    assert summary["mode"] == "local" and summary["learner_updates"] >= 4
    assert "keyword_coverage" in summary["eval"] and "baseline" in summary["eval"]


@pytest.mark.slow
def test_a_reward_function_that_raises_stops_the_run_clearly_and_keeps_checkpoints(tmp_path):
    from pathlib import Path

    from learner.checkpoint import latest_checkpoint, load_checkpoint

    repo = Path(__file__).resolve().parents[1]
    run = tmp_path / "run"
    base = [
        "train",
        "--mode",
        "serial",
        "--run-dir",
        str(run),
        "train.checkpoint_every=10",
        "replay.min_size_to_sample=32",
    ]
    proc = run_cli(*base, "task.name=tests.reward_fns:explodes_later", cwd=repo)
    assert proc.returncode == 2
    assert "reward function tests.reward_fns:explodes_later raised RuntimeError: lookup table missing" in proc.stderr
    assert "Traceback" not in proc.stderr
    state = load_checkpoint(latest_checkpoint(run / "checkpoints"))  # what was saved before the failure is intact
    assert state.updates >= 10
    base[base.index(str(run))] = str(tmp_path / "run_nan")  # a run directory holds one run
    nan = run_cli(*base, "task.name=tests.reward_fns:returns_nan", cwd=repo)
    assert nan.returncode == 2 and "returned nan" in nan.stderr


@pytest.mark.slow
def test_keywords_q_learning_raises_coverage_and_keeps_the_prior_fluent(tmp_path):
    # Measured on 2 cores (seed 0, 200 held-out prompt pairs): coverage 0.0075 -> 0.5475 in 100 updates, prior
    # perplexity of the generations 11.6 -> 13.7; about 2 minutes, pretraining included.
    lm = tmp_path / "lm"
    pretrain(
        load_config(
            "keywords", ["task.corpus_sentences=10000", "pretrain.steps=200", "pretrain.heldout_sentences=300"]
        ),
        lm,
    )
    cfg = load_config(
        "keywords",
        [f"init.from_run={lm}", "train.total_updates=100", "train.max_seconds=900", "task.eval_prompts=200"],
    )
    ev = train_serial(cfg, tmp_path / "kw", "keywords")["eval"]
    base = ev["baseline"]
    assert ev["num_prompts"] == base["num_prompts"] == 200
    assert ev["keyword_coverage"] - base["keyword_coverage"] >= 0.20, (base["keyword_coverage"], ev["keyword_coverage"])
    assert ev["prior_perplexity"] <= 2 * base["prior_perplexity"], (base["prior_perplexity"], ev["prior_perplexity"])
