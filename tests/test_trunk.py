"""hf.train_layers: a trained top on a frozen trunk, and the prompt prefix computed once into a KV cache
(learner/trunk.py, learner/hf.py).

Each shared computation is checked against the same network computed without sharing: a plain Hugging Face
Q-network over a copy of the model whose top blocks hold the trained top's weights, reading whole prompts.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from hf_models import PROMPTS, exported_and_ours, sampled_batch, save_tiny_model, tiny_lm, train_tokenizer  # noqa: E402
from procs import run_main  # noqa: E402

from actors.hf_text import HFTokenizer  # noqa: E402
from learner.config import LearnerConfig, QNetConfig  # noqa: E402
from learner.hf import HFModelError, HFQNetwork  # noqa: E402
from learner.learner import Learner  # noqa: E402
from learner.lora import AdapterTarget  # noqa: E402

PREFIX = [3, 4, 5]  # the ids every prompt starts with (a chat template's system turn)
PREFIXED = torch.cat([torch.tensor(PREFIX).expand(len(PROMPTS), -1), PROMPTS], dim=1)  # prompts of 4 to 8 tokens
ACTIONS = torch.tensor([[20, 21, 22, 23, 24, 25], [30, 31, 32, 33, 34, 35], [40, 41, 42, 43, 44, 45], [50] * 6])


def split_net(n: int, prefix=PREFIX, seed: int = 0, **cfg) -> HFQNetwork:
    """A network training the top n blocks of a tiny Llama, its trained part moved off the model's own weights."""
    net_cfg = QNetConfig(q_head="dueling_max", hf_path="tiny", train_layers=n, prefix_ids=list(prefix), **cfg)
    net = HFQNetwork(net_cfg, lm=tiny_lm("llama", seed=seed)).eval()
    torch.manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:
                p.add_(0.3 * torch.randn_like(p))
    return net


def unshared(net: HFQNetwork) -> HFQNetwork:
    """The same Q-function computed whole: a copy of the model with the trained top in its top blocks, no prefix
    cache, no trunk."""
    lm = copy.deepcopy(net.lm)
    n = net.cfg.train_layers
    if n > 0:
        layers = lm.model.layers
        for i, block in enumerate(net.top["layers"]):
            layers[len(layers) - n + i].load_state_dict(block.state_dict())
        lm.model.norm.load_state_dict(net.top["norm"].state_dict())
    plain = HFQNetwork(dataclasses.replace(net.cfg, train_layers=-1, prefix_ids=[]), lm=lm).eval()
    heads = {k: v for k, v in net.state_dict().items() if not k.startswith("top.")}
    plain.load_state_dict(heads, strict=False)
    return plain


def decode(net: HFQNetwork, prompts: torch.Tensor, actions: torch.Tensor):
    """Q and the reference's log-probs along `actions` through the KV cache, one token at a time: (B, T+1, V) each."""
    q, cache = net.start(prompts, actions.shape[1])
    qs, refs = [q], [net.reference_log_probs(cache)]
    for t in range(actions.shape[1]):
        qs.append(net.step(actions[:, t], cache))
        refs.append(net.reference_log_probs(cache))
    return torch.stack(qs, 1), (torch.stack(refs, 1) if refs[0] is not None else None)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_the_shared_trunk_q_equals_the_unshared_network_full_and_kv_cached(n):
    net = split_net(n)
    plain = unshared(net)
    with torch.no_grad():
        want = plain(PREFIXED, ACTIONS)  # (B, T+1, V)
        assert torch.allclose(net(PREFIXED, ACTIONS), want, atol=1e-4)
        cached, _ = decode(net, PREFIXED, ACTIONS)
        assert torch.allclose(cached, want, atol=1e-4)
        # prompts without the prefix are read whole, and give the same Q as the plain network too
        assert torch.allclose(net(PROMPTS, ACTIONS), plain(PROMPTS, ACTIONS), atol=1e-4)
        if n > 0:  # the moved top changes Q: the comparison is not of the model's own blocks with themselves
            before = HFQNetwork(plain.cfg, lm=tiny_lm("llama")).eval()
            heads = {k: v for k, v in plain.state_dict().items() if not k.startswith("lm.")}
            before.load_state_dict(heads, strict=False)  # the same heads over the model as loaded
            assert not torch.allclose(before(PREFIXED, ACTIONS), want, atol=1e-2)


@pytest.mark.parametrize("n", [0, 2])
def test_the_reference_log_probs_are_the_base_models_own(n):
    net = split_net(n)
    base = tiny_lm("llama")  # the model as loaded: the trained top moved, the reference did not
    with torch.no_grad():
        ids = torch.cat([PREFIXED[:1], ACTIONS[:1]], dim=1)  # the one prompt without padding
        want = torch.log_softmax(base(input_ids=ids).logits, -1)[:, PREFIXED.shape[1] - 1 :]
        _, ref = decode(net, PREFIXED[:1], ACTIONS[:1])
        assert torch.allclose(ref, want, atol=1e-4)
        if n > 0:  # Q is read from the moved top, not the reference
            q, _ = decode(net, PREFIXED[:1], ACTIONS[:1])
            assert not torch.allclose(torch.log_softmax(q, -1), want, atol=1e-2)


def test_a_lora_network_reads_the_prefix_from_its_cache_and_gives_the_same_q():
    pytest.importorskip("peft")
    cfg = QNetConfig(q_head="dueling_max", hf_path="tiny", lora_rank=4, prefix_ids=PREFIX)
    net = HFQNetwork(cfg, lm=tiny_lm("llama")).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
        prefix, net._prefix = net._prefix, None
        want = net(PREFIXED, ACTIONS)  # the same weights, prompts read whole
        net._prefix = prefix
        assert torch.allclose(net(PREFIXED, ACTIONS), want, atol=1e-4)
        assert torch.allclose(decode(net, PREFIXED, ACTIONS)[0], want, atol=1e-4)


def batch(seed: int = 0):
    return sampled_batch(PREFIXED, seed)


def test_an_update_trains_only_the_top_and_the_heads_and_publishes_only_them():
    net = split_net(1)
    learner = Learner(LearnerConfig(device="cpu", lr=0.01, target_update_every=3), net.cfg, net=net)
    assert isinstance(learner.target, AdapterTarget)
    frozen = {k: v.clone() for k, v in nn_state(net).items() if k.startswith(("lm.", "ref_top."))}
    top = {k: v.clone() for k, v in net.state_dict().items()}
    learner.update(batch())
    assert all(p.grad is None for n, p in net.named_parameters() if n.startswith(("lm.", "ref_top.")))
    assert all(torch.equal(v, nn_state(net)[k]) for k, v in frozen.items())  # the trunk and reference never move
    assert any(not torch.equal(v, net.state_dict()[k]) for k, v in top.items() if k.startswith("top."))
    weights = learner.get_weights()
    assert set(weights) == set(top) and any(k.startswith("top.layers.0.") for k in weights)
    assert not any(k.startswith(("lm.", "ref_top.")) for k in weights)
    assert sum(v.numel() for v in weights.values()) == learner.trainable_parameters()
    # an actor loads its own model once and then only these: its Q equals the learner's
    actor = split_net(1)
    with torch.no_grad():
        assert not torch.allclose(actor(PREFIXED, ACTIONS), net(PREFIXED, ACTIONS), atol=1e-3)
        actor.load_state_dict(weights)
        assert torch.allclose(actor(PREFIXED, ACTIONS), net(PREFIXED, ACTIONS), atol=1e-6)
    # the target is the trained part as it was at the last sync: run over the shared trunk
    learner.update(batch(1))
    learner.update(batch(2))
    with torch.no_grad():
        assert torch.allclose(learner.target(PREFIXED, ACTIONS), net(PREFIXED, ACTIONS), atol=1e-5)


def nn_state(net: HFQNetwork) -> dict:
    return torch.nn.Module.state_dict(net)


def test_the_online_and_target_q_come_from_one_trunk_pass():
    net = split_net(2)
    learner = Learner(LearnerConfig(device="cpu"), net.cfg, net=net)
    learner.update(batch())  # computes the prefix's keys and values through the trunk, once
    calls = []
    view = net._views["trunk"]
    original = view.forward

    @functools.wraps(original)
    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    view.forward = counted
    learner.update(batch(1))
    assert len(calls) == 1  # one pass of the trunk for the online and the target Q


def test_bad_train_layers_are_one_sentence():
    with pytest.raises(HFModelError, match="GPT2LMHeadModel|has not"):
        HFQNetwork(QNetConfig(q_head="dueling_max", train_layers=1), lm=tiny_lm("gpt2"))
    with pytest.raises(HFModelError, match="more than the model's 2 blocks"):
        HFQNetwork(QNetConfig(q_head="dueling_max", train_layers=3), lm=tiny_lm("llama"))


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["hf.train_layers=2", "hf.lora_rank=4"], "cannot both be set"),
        (["hf.train_layers=-2"], "hf.train_layers must be >= 0"),
        (["hf.train_layers=5"], "more than the model's 2 blocks"),
    ],
)
def test_bad_train_layers_settings_exit_2_in_one_sentence(overrides, words, tiny_dir, tmp_path, capsys):
    args = [
        "train",
        "--config",
        "keywords",
        "--mode",
        "serial",
        "--run-dir",
        tmp_path / "r",
        f"init.from_hf={tiny_dir}",
    ]
    code, _, err = run_main(args + overrides, capsys)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err


def test_system_prompt_needs_a_hf_model(tmp_path, capsys):
    code, _, err = run_main(["train", "--config", "keywords", "task.system_prompt=none"], capsys)
    assert code == 2 and "task.system_prompt needs a Hugging Face chat model" in err


TEMPLATE = (  # short: the test tokenizer spells these pieces byte by byte
    "{% if messages[0]['role'] != 'system' %}s: be kind.\n{% endif %}"
    "{% for m in messages %}{{ m['role'][0] }}: {{ m['content'] }}\n{% endfor %}a:"
)


def test_the_system_prompt_is_the_templates_replaced_or_dropped_and_is_the_shared_prefix():
    tok = train_tokenizer(400, chat_template=TEMPLATE)
    auto, none, own = (HFTokenizer(tok, len(tok), "auto", s) for s in ("auto", "none", "Be brief."))
    assert tok.decode(auto.encode_prompt("hi")) == "s: be kind.\nu: hi\na:"
    assert tok.decode(none.encode_prompt("hi")) == "s: \nu: hi\na:"
    assert tok.decode(own.encode_prompt("hi")) == "s: Be brief.\nu: hi\na:"
    for t in (auto, none, own):
        prefix = t.shared_prefix()
        a, b = t.encode_prompt("the dog ran"), t.encode_prompt("a cat sat")
        assert a[: len(prefix)] == b[: len(prefix)] == prefix and a[len(prefix)] != b[len(prefix)]
        assert tok.decode(prefix).endswith("u:")
    assert len(auto.shared_prefix()) > len(none.shared_prefix())
    assert HFTokenizer(tok, len(tok), "none").shared_prefix() == []  # no chat template: no prefix


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("llama") / "llama", "llama", chat_template=TEMPLATE)


SMALL = ["train.total_updates=4", "replay.min_size_to_sample=32", "train.eval_every=4", "task.eval_prompts=8"]
SMALL += ["task.max_length=8", "actors.batch_size=16", "learner.batch_size=16", "train.checkpoint_every=4"]
SMALL += ["hf.train_layers=1", "learner.lr=0.01"]


def test_a_trunk_run_checkpoints_the_top_resumes_and_exports(tiny_dir, tmp_path, capsys):
    from learner.checkpoint import latest_checkpoint, load_checkpoint

    run = tmp_path / "run"
    args = ["train", "--config", "keywords", "--mode", "serial", "--run-dir", run, f"init.from_hf={tiny_dir}"]
    code, out, err = run_main(args + SMALL, capsys)
    assert code == 0, err
    code, _, err = run_main(["train", "--resume", run, "train.total_updates=8"], capsys)
    assert code == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["learner_updates"] == 8 and summary["resumed_from_updates"] == 4
    state = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    online = state.learner["online"]
    assert any(k.startswith("top.layers.0.") for k in online)
    assert not any(k.startswith(("lm.", "ref_top.")) for k in online)
    assert summary["trainable_parameters"] == sum(v.numel() for v in online.values()) < summary["num_parameters"]
    assert summary["weights_bytes_per_publish"] == 4 * summary["trainable_parameters"]
    assert state.learner["base"]["path"] == str(tiny_dir)
    assert "constraint_success" in summary["eval"] or "keyword_coverage" in summary["eval"]
    code, _, err = run_main(["export", "--run-dir", run, "--out", tmp_path / "merged"], capsys)
    assert code == 0, err
    ours, theirs = exported_and_ours(run, tmp_path / "merged", 8)
    assert theirs == ours


def test_actors_read_the_fluency_prior_from_the_trunks_reference_as_the_prior_computes_it():
    from actors.rollout import generate
    from actors.text_task import PriorModel, keywords_prompt, text_task

    tok = train_tokenizer(400, chat_template=TEMPLATE)
    tokenizer = HFTokenizer(tok, len(tok))
    lm = tiny_lm("llama", vocab=len(tok))
    lm.config.max_position_embeddings = 128
    prior = PriorModel(HFQNetwork(QNetConfig(q_head="plain"), lm=lm, base_only=True))
    words = ["dog", "cat", "house", "tree"]
    task = text_task("keywords", tokenizer, prior, words, max_length=8, prompt_len=64, context=128, prior_coef=0.5)
    cfg = QNetConfig(q_head="dueling_max", hf_path="tiny", train_layers=1, prefix_ids=tokenizer.shared_prefix())
    net = HFQNetwork(cfg, lm=lm).eval()
    assert len(cfg.prefix_ids) > 3
    prompts = task.encode_prompts([keywords_prompt(words[i : i + 2]) for i in range(3)], "test")
    calls = []
    own = prior.token_log_probs
    prior.token_log_probs = lambda *a: calls.append(1) or own(*a)
    episodes = generate(net, task, prompts, 0.5, np.random.default_rng(0))
    assert not calls  # the rewards read the network's own reference top, not a pass of the prior
    own_pass = task.episode_rewards(prompts, episodes.actions, episodes.lengths)  # the prior's pass
    assert episodes.lengths.min() > 1 and np.abs(own_pass).max() > 0
    np.testing.assert_allclose(episodes.rewards, own_pass, atol=1e-4)


@pytest.mark.slow  # two fresh processes, each loading transformers and peft
def test_the_hf_bench_measures_both_paths_and_checks_their_flop_counts(tiny_dir, tmp_path, capsys):
    pytest.importorskip("peft")
    out = tmp_path / "hf.json"
    code, stdout, err = run_main(["bench", "--hf", tiny_dir, "--quick", "--train-layers", "1", "--out", out], capsys)
    assert code == 0, err
    figures = json.loads(out.read_text())
    for path in ("lora", "trunk"):
        assert figures[f"hf.learner.flops_checked.{path}"] is True  # the analytic count within the counter's bracket
        assert figures[f"hf.learner.updates_per_s.{path}"] > 0 and figures[f"hf.rollout.tokens_per_s.{path}"] > 0
        assert figures[f"hf.learner.peak_rss_mb.{path}"] > 0
        assert figures[f"hf.learner.gflops.{path}"] == pytest.approx(
            figures[f"hf.learner.flops_per_update.{path}"] * figures[f"hf.learner.updates_per_s.{path}"] / 1e9
        )
    # the trunk path trains block 1 of 2 and the heads; LoRA rank 8 its adapters and heads
    assert figures["hf.learner.trainable_parameters.trunk"] == 9_280 + 32 + 33 + figures["hf.vocab"]
    assert figures["hf.learner.speedup"] == pytest.approx(
        figures["hf.learner.updates_per_s.trunk"] / figures["hf.learner.updates_per_s.lora"]
    )
    assert "hf.rollout.speedup" in stdout
    code, _, err = run_main(["bench", "--hf", tmp_path / "missing"], capsys)
    assert code == 2 and "no such model directory" in err and len(err.strip().splitlines()) == 1
