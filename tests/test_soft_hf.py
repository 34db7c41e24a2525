"""learner.backup=soft on a Hugging Face model (q_head=soft over a frozen trunk), and sequence-level reward
functions in TRL's signature (task.reward_fn, task custom) with prompt files of text, JSONL and chat messages."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from hf_models import PROMPTS, exported_and_ours, sampled_batch, save_tiny_model, tiny_lm, train_tokenizer  # noqa: E402
from procs import run_main  # noqa: E402

from actors.hf_text import HFTokenizer  # noqa: E402
from actors.policy import Policy  # noqa: E402
from actors.tasks import TaskError  # noqa: E402
from actors.text import TextError, read_prompt_records  # noqa: E402
from actors.text_task import SequenceReward, text_task  # noqa: E402
from learner.config import LearnerConfig, QNetConfig  # noqa: E402
from learner.hf import HFModelError, HFQNetwork  # noqa: E402
from learner.learner import Learner  # noqa: E402

PREFIX = [3, 4, 5]
PREFIXED = torch.cat([torch.tensor(PREFIX).expand(len(PROMPTS), -1), PROMPTS], dim=1)
ACTIONS = torch.tensor([[20, 21, 22, 23, 24, 25], [30, 31, 32, 33, 34, 35], [40, 41, 42, 43, 44, 45], [50] * 6])
BETA = 0.2
TEMPLATE = (  # short: the test tokenizer spells these pieces byte by byte
    "{% if messages[0]['role'] != 'system' %}s: be kind.\n{% endif %}"
    "{% for m in messages %}{{ m['role'][0] }}: {{ m['content'] }}\n{% endfor %}a:"
)


def soft_net(n: int, seed: int = 0) -> HFQNetwork:
    cfg = QNetConfig(q_head="soft", hf_path="tiny", train_layers=n, prefix_ids=PREFIX, soft_beta=BETA)
    return HFQNetwork(cfg, lm=tiny_lm("llama", seed=seed)).eval()


def model_log_probs(net: HFQNetwork) -> torch.Tensor:
    """log p(. | s_t) of the untouched model along ACTIONS, from one plain pass: (B, T+1, V)."""
    P = PREFIXED.shape[1]
    out = []
    with torch.no_grad():
        for prompt, actions in zip(PREFIXED, ACTIONS):
            ids = torch.cat([prompt[prompt >= 0], actions])[None]
            logits = net.lm(input_ids=ids).logits[0, len(prompt[prompt >= 0]) - 1 :]
            out.append(torch.log_softmax(logits.float(), -1))
    assert P > 0
    return torch.stack(out)


def decode(net: HFQNetwork):
    q, cache = net.start(PREFIXED, ACTIONS.shape[1])
    qs, refs = [q], [net.reference_log_probs(cache)]
    for t in range(ACTIONS.shape[1]):
        qs.append(net.step(ACTIONS[:, t], cache))
        refs.append(net.reference_log_probs(cache))
    return torch.stack(qs, 1), torch.stack(refs, 1)


@pytest.mark.parametrize("n", [0, 2])
def test_the_soft_head_starts_at_zero_so_the_policy_starts_as_the_model(n):
    net = soft_net(n)
    with torch.no_grad():
        q = net(PREFIXED, ACTIONS)
        q_online, q_target, log_ref = net.q_pair(net.make_target(), PREFIXED, ACTIONS)
    q_steps, ref_steps = decode(net)
    assert q.abs().max() == 0 and q_online.abs().max() == 0 and q_target.abs().max() == 0
    assert q_steps.abs().max() == 0
    want = model_log_probs(net)
    torch.testing.assert_close(log_ref, want, atol=1e-4, rtol=0)
    torch.testing.assert_close(ref_steps, want, atol=1e-4, rtol=0)
    # the policy's logits log pi_ref + Q / beta are the model's own log-probs at the warm start
    logits = Policy(beta=BETA).logits(q_steps[:, 2].numpy(), ref_steps[:, 2].numpy())
    np.testing.assert_allclose(logits, want[:, 2].numpy(), atol=1e-4)


def test_the_warm_start_is_bellman_consistent_and_an_update_moves_only_the_trained_part():
    net = soft_net(1)
    learner = Learner(LearnerConfig(device="cpu", backup="soft", beta=BETA, lr=0.01), net.cfg, net=net)
    batch = sampled_batch(PREFIXED, 0)
    batch.rewards[:] = 0.0
    metrics, priorities = learner.update(batch)
    assert np.abs(priorities).max() < 1e-6  # Q = 0 and r = 0: the soft backup's target is 0 everywhere
    learner.update(sampled_batch(PREFIXED, 1))  # rewards now: Q moves, the reference does not
    with torch.no_grad():
        q_online, _, log_ref = net.q_pair(learner.target, PREFIXED, ACTIONS)
    assert q_online.abs().max() > 1e-3
    torch.testing.assert_close(log_ref, model_log_probs(soft_net(1)), atol=1e-4, rtol=0)
    # the KV-cached Q the actors read is the learner's
    q_steps, _ = decode(net)
    torch.testing.assert_close(q_steps, q_online, atol=1e-4, rtol=1e-4)


def test_the_soft_token_bias_only_takes_mass_away():
    """The soft head's per-token bias is projected under 0 after every step: TD errors of both signs lower some
    tokens and raise none (without the bound, the same updates raise some)."""
    biases = []
    for bounded in (True, False):
        cfg = QNetConfig(
            q_head="soft", hf_path="tiny", train_layers=1, prefix_ids=PREFIX, soft_beta=BETA, token_bias=True
        )
        net = HFQNetwork(cfg, lm=tiny_lm("llama")).eval()
        learner = Learner(LearnerConfig(device="cpu", backup="soft", beta=BETA, lr=0.01), net.cfg, net=net)
        for group in learner.optimizer.param_groups:
            if not bounded:
                group.pop("max", None)
        for seed in range(4):
            learner.update(sampled_batch(PREFIXED, seed))
        biases.append(net.token_bias.detach().clone())
    bounded_bias, free_bias = biases
    assert bounded_bias.max() <= 0 and bounded_bias.min() < -1e-3
    assert free_bias.max() > 1e-3


def test_a_large_token_bias_eps_makes_the_bias_step_follow_its_gradient():
    """Adam's first step is lr g / (|g| + eps) per parameter. With the default epsilon every token taken moves its
    bias by the same lr whatever its TD error (one noisy occurrence is a full step); with hf.token_bias_eps far
    above the gradients it moves by lr g / eps, in proportion to the error."""
    lr, steps = 0.05, []
    for eps in (0.0, 1e-2):
        cfg = QNetConfig(
            q_head="soft", hf_path="tiny", train_layers=1, prefix_ids=PREFIX, soft_beta=BETA, token_bias=True,
            token_bias_lr=lr, token_bias_eps=eps,
        )  # fmt: skip
        net = HFQNetwork(cfg, lm=tiny_lm("llama")).eval()
        learner = Learner(LearnerConfig(device="cpu", backup="soft", beta=BETA, lr=1e-3), net.cfg, net=net)
        learner.update(sampled_batch(PREFIXED, 0))
        g = net.token_bias.grad.detach().clone()
        down = g > 1e-6  # the tokens whose bias the step lowers (a raise is projected back to 0)
        steps.append((-net.token_bias.detach()[down], g[down]))
    (tiny_eps, _), (large_eps, g) = steps
    torch.testing.assert_close(tiny_eps, torch.full_like(tiny_eps, lr), rtol=1e-3, atol=0)
    torch.testing.assert_close(large_eps, lr * g / (g + 1e-2), rtol=1e-3, atol=1e-7)
    assert large_eps.max() > 3 * large_eps.min()  # steps as unequal as the errors


def test_the_soft_head_needs_the_frozen_trunk_in_one_sentence():
    with pytest.raises(HFModelError, match="needs hf.train_layers"):
        HFQNetwork(QNetConfig(q_head="soft", soft_beta=0.1), lm=tiny_lm("llama"))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("llama") / "llama", "llama", chat_template=TEMPLATE)


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["learner.backup=soft"], "needs model.q_head=soft"),
        (["learner.backup=soft", "hf.train_layers=-1", "hf.lora_rank=4", "model.q_head=soft"], "hf.train_layers"),
        (["model.q_head=soft"], "needs init.from_hf and learner.backup=soft"),
        (["learner.backup=soft", "model.q_head=soft", "learner.compile=true"], "learner.compile"),
        (["task.reward_fn=nomodule:fn"], "cannot load reward function 'nomodule:fn'"),
        (["task.reward_fn=a:b,c:d", "task.reward_weights=1"], "1 weights for task.reward_fn's 2 functions"),
        (["task.name=custom"], "task custom needs task.reward_fn"),
    ],
)
def test_bad_soft_and_reward_settings_exit_2_in_one_sentence(overrides, words, tiny_dir, tmp_path, capsys):
    run = ["--run-dir", tmp_path / "r", f"init.from_hf={tiny_dir}", "hf.train_layers=1"]
    code, _, err = run_main(["train", "--config", "keywords", "--mode", "serial", *run, *overrides], capsys)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err


def test_prompt_files_give_text_jsonl_and_chat_records_with_their_other_fields(tmp_path):
    text = tmp_path / "p.txt"
    text.write_text("one\n\ntwo\n")
    assert [r.prompt for r in read_prompt_records(text)] == ["one", "two"]
    jsonl = tmp_path / "p.jsonl"
    chat = [{"role": "user", "content": "hi"}]
    rows = [{"prompt": "a", "answer": 3}, {"messages": chat, "answer": 4}, {"prompt": chat}]
    jsonl.write_text("\n".join(json.dumps(r) for r in rows))
    records = read_prompt_records(jsonl)
    assert [r.prompt for r in records] == ["a", chat, chat]
    assert [r.columns for r in records] == [{"answer": 3}, {"answer": 4}, {}]
    jsonl.write_text(json.dumps({"messages": [{"role": "user"}]}))
    with pytest.raises(TextError, match="line 1: 'messages' must be a list of chat messages"):
        read_prompt_records(jsonl)
    jsonl.write_text(json.dumps({"question": "x"}))
    with pytest.raises(TextError, match='line 1 has no "prompt", "messages" or "text" field'):
        read_prompt_records(jsonl)


def custom_task(fns, weights=None, success_at=1.0):
    tok = train_tokenizer(400, chat_template=TEMPLATE)
    seq = SequenceReward(fns, weights or [1.0] * len(fns), success_at)
    return text_task(
        "custom", HFTokenizer(tok, len(tok)), None, ["dog"], max_length=8, context=128, sequence_reward=seq
    )


def test_sequence_rewards_are_called_once_per_batch_as_trl_calls_them_and_credited_at_the_last_token():
    calls = []

    def length_reward(prompts, completions, answer, completion_ids, **kwargs):
        calls.append((prompts, completions, answer, completion_ids))
        return [float(len(ids)) for ids in completion_ids]

    def constant(completions, **kwargs):
        return [None if isinstance(c, list) else 1.0 for c in completions]  # None: does not apply, counts 0

    task = custom_task([("m:length", length_reward), ("m:constant", constant)], [0.5, 2.0], success_at=3.0)
    chat = [{"role": "user", "content": "a dog"}]
    records_from = [("a cat", {"answer": 1}), (chat, {"answer": 2})]
    from actors.text import PromptRecord

    records = [PromptRecord(p, c) for p, c in records_from]
    prompts = task.encode_prompts([r.prompt for r in records], "test", records)
    eos = task.tokenizer.eos_id
    actions = np.array([[7, 8, 9, eos, 0], [7, 8, eos, 0, 0]])
    lengths = np.array([4, 3])
    r = task.episode_rewards(prompts, actions, lengths)
    assert len(calls) == 1  # one call for the whole batch
    got_prompts, completions, answer, ids = calls[0]
    assert got_prompts == ["a cat", chat] and answer == [1, 2]
    text = task.tokenizer.decode([7, 8, 9])
    assert completions[0] == text and completions[1] == [
        {"role": "assistant", "content": task.tokenizer.decode([7, 8])}
    ]
    assert ids == [[7, 8, 9, eos], [7, 8, eos]]
    assert r[0].tolist() == [0, 0, 0, 0.5 * 4 + 2.0, 0] and r[1].tolist() == [0, 0, 0.5 * 3, 0, 0]
    assert task.success(prompts, actions, lengths).tolist() == [True, False]


@pytest.mark.parametrize(
    "fn, words",
    [
        (lambda completions, **kw: 1 / 0, "reward function m:f raised ZeroDivisionError"),
        (lambda completions, **kw: [1.0], "returned 1 scores for a batch of 2 completions"),
        (lambda completions, **kw: [1.0, float("nan")], "returned nan"),
        (lambda completions, **kw: 3.0, "must return a list of numbers"),
    ],
)
def test_a_bad_reward_function_is_one_sentence_naming_it(fn, words):
    task = custom_task([("m:f", fn)])
    prompts = task.encode_prompts(["a", "b"], "test")
    with pytest.raises(TaskError, match=words):
        task.episode_rewards(prompts, np.array([[7, 8], [7, 9]]), np.array([2, 2]))


REWARDS = '''
def short_and_dogless(prompts, completions, **kwargs):
    """1 for an answer under 12 characters without a "d", TRL's signature."""
    return [float(len(c) < 12 and "d" not in c) for c in completions]


def raises(prompts, completions, **kwargs):
    raise KeyError("answer")
'''


def test_a_custom_task_trains_soft_on_a_trunk_reports_both_policies_and_exports(
    tiny_dir, tmp_path, capsys, monkeypatch
):
    (tmp_path / "my_rewards.py").write_text(textwrap.dedent(REWARDS))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    prompts = tmp_path / "train.jsonl"
    prompts.write_text("\n".join(json.dumps({"prompt": f"about a {w}"}) for w in ["dog", "cat", "house", "tree"]))
    heldout = tmp_path / "eval.txt"
    heldout.write_text("about a river\nabout a box\n")
    run = tmp_path / "run"
    args = ["train", "--config", "keywords", "--mode", "serial", "--run-dir", run, f"init.from_hf={tiny_dir}"]
    args += ["task.name=custom", "task.reward_fn=my_rewards:short_and_dogless", f"task.prompts_file={prompts}"]
    args += [f"task.eval_prompts_file={heldout}", "learner.backup=soft", "model.q_head=soft", "hf.train_layers=1"]
    args += ["train.total_updates=4", "replay.min_size_to_sample=16", "train.eval_every=4", "task.max_length=8"]
    args += ["actors.batch_size=16", "learner.batch_size=8", "train.checkpoint_every=4", "actors.top_k=20"]
    code, _, err = run_main(args, capsys)
    assert code == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["learner_updates"] == 4
    final = summary["eval"]
    assert final["success_rate"] is not None and final["sampled_success_rate"] is not None
    for name in ("mean_words", "distinct_2", "prior_perplexity"):
        assert name in final and f"sampled_{name}" in final
    assert "sampled_mean_words" in summary["eval_history"][-1]
    code, _, err = run_main(["export", "--run-dir", run, "--out", tmp_path / "merged"], capsys)
    assert code == 0, err
    ours, theirs = exported_and_ours(run, tmp_path / "merged", 4)  # the exported model decodes pi's greedy policy
    assert theirs == ours
    # a reward function that raises: one sentence naming it, exit non-zero, the run directory kept
    bad = tmp_path / "bad"
    code, _, err = run_main([*args[:6], bad, *args[7:], "task.reward_fn=my_rewards:raises"], capsys)
    assert code != 0 and "reward function my_rewards:raises raised KeyError" in err, err
    assert "Traceback" not in err and (bad / "config.json").exists()
