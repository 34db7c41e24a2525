"""One Q-function interface (learner/qfunction.py): tokenq's Transformer and a Hugging Face LM (in full or under
LoRA) both implement it; save_pretrained / from_pretrained give back the same Q; export refuses what it cannot
write in one sentence."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

pytest.importorskip("peft")

from hf_models import PROMPTS, save_tiny_model, tiny_lm  # noqa: E402

from learner.checkpoint import CheckpointError  # noqa: E402
from learner.config import LearnerConfig, QNetConfig  # noqa: E402
from learner.hf import HFQNetwork  # noqa: E402
from learner.model import QNetwork, make_network  # noqa: E402
from learner.qfunction import CONFIG_FILE, QFunction, QFunctionError, Target  # noqa: E402

LORA = QNetConfig(q_head="dueling_max", hf_path="tiny", lora_rank=4, token_bias=True)
FULL = QNetConfig(q_head="separate", hf_path="tiny")
ACTIONS = torch.tensor([[20, 21, 22], [23, 24, 25], [26, 27, 28], [29, 30, 31]])


def perturbed(net):
    """Every trained weight moved off its initial value (LoRA's B and the V head start at 0)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def test_both_networks_are_q_functions_with_their_own_target_and_groups():
    own = QNetwork(QNetConfig())
    heads_lr = {"head_lr": 1e-2, "token_bias_lr": 0.1}
    full = HFQNetwork(
        QNetConfig(q_head="dueling_max", hf_path="tiny", token_bias=True, **heads_lr), lm=tiny_lm("llama")
    )
    lora = HFQNetwork(dataclasses.replace(LORA, **heads_lr), lm=tiny_lm("llama"))
    for net in (own, full, lora):
        assert isinstance(net, QFunction) and isinstance(net.make_target(), Target)
    assert own.base_reference() is None and full.base_reference() is None
    assert lora.base_reference()["path"] == "tiny" and len(lora.base_reference()["fingerprint"]) == 16

    cfg = LearnerConfig(lr=1e-3)
    (group,) = own.param_groups(cfg)  # one group at learner.lr
    assert sum(p.numel() for p in group["params"]) == own.num_parameters()
    groups = full.param_groups(cfg)  # LM body, V head (32 weights + 1 bias), token bias (101 tokens)
    assert [g["lr"] for g in groups] == [1e-3, 1e-2, 0.1]
    assert [sum(p.numel() for p in g["params"]) for g in groups[1:]] == [33, 101]
    assert sum(p.numel() for g in groups for p in g["params"]) == full.num_parameters()
    lora_body = sum(p.numel() for n, p in lora.named_parameters() if "lora_" in n)
    assert [sum(p.numel() for p in g["params"]) for g in lora.param_groups(cfg)] == [lora_body, 33, 101]


def test_a_lora_network_shares_the_priors_lm_and_tokenqs_own_ignores_it():
    prior = HFQNetwork(QNetConfig(q_head="plain", hf_path="tiny"), lm=tiny_lm("llama"), base_only=True)
    assert make_network(LORA, share_lm=prior).lm is prior.lm
    assert isinstance(make_network(QNetConfig(), share_lm=prior), QNetwork)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_lora_round_trip_writes_peft_adapters_and_gives_the_same_q(arch, tmp_path):
    from peft import PeftModel

    net = perturbed(HFQNetwork(LORA, lm=tiny_lm(arch)))
    net.save_pretrained(tmp_path)
    files = {"adapter_config.json", "adapter_model.safetensors", "heads.safetensors", CONFIG_FILE}
    assert {p.name for p in tmp_path.iterdir()} == files
    saved = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert saved["base"] == net.base_reference() and saved["qnet"]["lora_rank"] == 4
    loaded = HFQNetwork.from_pretrained(tmp_path, lm=tiny_lm(arch)).eval()
    with torch.no_grad():
        assert torch.equal(loaded(PROMPTS, ACTIONS), net(PROMPTS, ACTIONS))
        # peft itself reads the adapters: its LM's logits are the network's own LM's
        ids = torch.cat([PROMPTS[:1], ACTIONS[:1]], 1)
        peft_lm = PeftModel.from_pretrained(tiny_lm(arch), tmp_path).eval()
        assert torch.allclose(peft_lm(ids).logits, net.lm(ids).logits, atol=1e-6)


def test_full_fine_tune_round_trip_saves_the_whole_lm(tmp_path):
    net = perturbed(HFQNetwork(FULL, lm=tiny_lm("llama")))
    net.save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors", "heads.safetensors", CONFIG_FILE} <= {
        p.name for p in tmp_path.iterdir()
    }
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["base"] is None
    loaded = HFQNetwork.from_pretrained(tmp_path).eval()  # the LM comes from the directory, not hf_path
    with torch.no_grad():
        assert torch.equal(loaded(PROMPTS, ACTIONS), net(PROMPTS, ACTIONS))


def test_adapters_on_another_base_are_refused_in_one_sentence(tmp_path):
    HFQNetwork(LORA, lm=tiny_lm("llama")).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=r"trained on the base model tiny \(weights fingerprint [0-9a-f]{16}\)"):
        HFQNetwork.from_pretrained(tmp_path, lm=tiny_lm("llama", seed=1))


def test_tokenq_network_round_trip_and_its_export_refusal(tmp_path):
    net = QNetwork(QNetConfig(arch="decoder", q_head="dueling", copy_head=True, tie_embeddings=True)).eval()
    net.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {CONFIG_FILE, "qnetwork.pt"}
    loaded = QNetwork.from_pretrained(tmp_path).eval()
    prompts, actions = torch.tensor([[4, 5, 6], [7, 8, 9]]), torch.tensor([[4, 6], [5, 7]])
    with torch.no_grad():
        assert torch.equal(loaded(prompts, actions), net(prompts, actions))
    assert loaded.head.weight is loaded.tok_emb.weight  # tied again, not two copies
    with pytest.raises(QFunctionError, match=r"^tokenq export writes Hugging Face models.*init\.from_hf\)$"):
        net.export_model()
    with pytest.raises(QFunctionError, match="per-token bias"):
        HFQNetwork(LORA, lm=tiny_lm("llama")).export_model()
    HFQNetwork(LORA, lm=tiny_lm("llama")).save_pretrained(tmp_path / "hf")
    with pytest.raises(QFunctionError, match="load it with HFQNetwork.from_pretrained"):
        QNetwork.from_pretrained(tmp_path / "hf")


@pytest.mark.slow
def test_export_adapters_writes_a_directory_from_pretrained_reads(tmp_path, capsys):
    """A 2-update serial LoRA run; `tokenq export --adapters` gives the run's Q back, its base read from hf_path."""
    from tokenq.cli import main
    from tokenq.evaluate_run import load_run

    model = save_tiny_model(tmp_path / "llama", "llama")
    run, out = tmp_path / "run", tmp_path / "adapters"
    small = ["train.total_updates=2", "replay.min_size_to_sample=16", "task.eval_prompts=4", "task.max_length=6"]
    small += ["actors.batch_size=8", "learner.batch_size=8", "hf.lora_rank=4", "train.eval_every=2"]
    args = ["train", "--config", "keywords", "--mode", "serial", "--run-dir", run, f"init.from_hf={model}", *small]
    assert main([str(a) for a in args]) == 0
    assert main(["export", "--run-dir", str(run), "--out", str(out), "--adapters"]) == 0
    assert "HFQNetwork.from_pretrained" in capsys.readouterr().out
    assert {"adapter_model.safetensors", "heads.safetensors", CONFIG_FILE, "tokenizer.json"} <= {
        p.name for p in out.iterdir()
    }
    _, ours, _, _ = load_run(run)
    theirs = HFQNetwork.from_pretrained(out).eval()
    with torch.no_grad():
        assert torch.equal(theirs(PROMPTS, ACTIONS), ours(PROMPTS, ACTIONS))
