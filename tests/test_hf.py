"""Hugging Face causal LMs as the Q-network: heads, KV cache, padding, rewards on decoded text, bad input.

Tiny models are built from configs and tokenizers trained here (tests/hf_models.py): nothing is downloaded.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from hf_models import PROMPTS, exported_and_ours, save_tiny_model, tiny_lm, train_tokenizer  # noqa: E402
from procs import run_main  # noqa: E402

from actors.hf_text import HFTokenizer, pad_prompts  # noqa: E402
from actors.text_task import keywords_prompt, text_task  # noqa: E402
from learner.config import QNetConfig  # noqa: E402
from learner.hf import HFQNetwork  # noqa: E402


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("head", ["dueling_max", "plain", "separate"])
def test_kv_cached_q_equals_the_full_forward_over_prompts_of_different_lengths(arch, head):
    net = HFQNetwork(QNetConfig(q_head=head), lm=tiny_lm(arch)).eval()
    if net.v_head is not None:  # a trained V head, so that the dueling sum is checked with V != 0
        torch.nn.init.normal_(net.v_head.weight, std=1.0)
    actions = torch.randint(0, 101, (4, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = net(PROMPTS, actions)  # (B, 8, V)
    q, cache = net.start(PROMPTS, 7)
    cached = [q]
    for t in range(7):
        cached.append(net.step(actions[:, t], cache))
    assert full.shape == (4, 8, 101)
    assert (torch.stack(cached, 1) - full).abs().max().item() < 1e-4
    # a prompt's Q does not depend on the other prompts in its batch (padding and positions are right)
    with torch.no_grad():
        alone = net(PROMPTS[1:2, :2], actions[1:2])
    assert (alone - full[1:2]).abs().max().item() < 1e-4


def test_heads_start_from_the_language_model():
    lm = tiny_lm("llama")
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        logits = lm(ids).logits[:, -1]  # (1, V)
        q_dueling = HFQNetwork(QNetConfig(q_head="dueling_max"), lm=lm)(ids, ids[:, :0])[:, 0]
        q_logits = HFQNetwork(QNetConfig(q_head="plain"), lm=lm)(ids, ids[:, :0])[:, 0]
        q_separate = HFQNetwork(QNetConfig(q_head="separate"), lm=lm)(ids, ids[:, :0])[:, 0]
    # V(s) starts at 0: Q = logits - max logits = log p - max log p, the `gap` prior reward; greedy = the LM's
    assert torch.allclose(q_dueling, logits - logits.max(), atol=1e-5)
    assert q_dueling.max().item() == pytest.approx(0.0, abs=1e-6)
    assert torch.allclose(q_logits, logits, atol=1e-6)
    assert torch.allclose(q_separate, logits, atol=1e-5)


@pytest.fixture(scope="module")
def tokenizer():
    tok = train_tokenizer(400)
    return HFTokenizer(tok, len(tok))


def make_task(tokenizer, name="keywords", **kw):
    return text_task(
        name, tokenizer, None, ["dog", "cat", "house", "river"], max_length=16, prompt_len=32, context=128, **kw
    )


def ids_of(tokenizer, text):
    return np.array([tokenizer.encode(text)])


def test_keyword_reward_is_paid_once_per_keyword_as_a_whole_word(tokenizer):
    task = make_task(tokenizer, keyword_reward=2.0, eos_reward=0.0, prior_coef=0.0)
    prompts = task.encode_prompts([keywords_prompt(["dog", "house"])], "test")
    for text, expected in [
        (" the dog saw a house .", 4.0),  # both words: 2 + 2
        (" the dogs saw a housekeeper .", 0.0),  # neither appears as a whole word
        (" the dog saw the dog .", 2.0),  # a keyword pays once
    ]:
        actions = ids_of(tokenizer, text)
        lengths = np.array([actions.shape[1]])
        r = task.episode_rewards(prompts, actions, lengths)
        assert r.sum() == pytest.approx(expected), text
    # the reward for "dog" is credited at the token after it, which shows the word is whole
    actions = ids_of(tokenizer, " the dog saw a house .")
    pieces = [tokenizer.decode([a]) for a in actions[0]]
    r = task.episode_rewards(prompts, actions, np.array([actions.shape[1]]))[0]
    dog_end = next(i for i in range(len(pieces)) if "dog" in "".join(pieces[: i + 1]))  # "dog" may be 2 tokens
    assert r[dog_end + 1] == 2.0 and r[dog_end] == 0.0
    coverage = task.text_metrics(prompts, actions, np.array([actions.shape[1]]))["keyword_coverage"]
    assert coverage == 1.0


def test_lipogram_counts_banned_tokens_and_words(tokenizer):
    task = make_task(tokenizer, name="lipogram", banned="e", banned_reward=-1.0, eos_reward=1.0, prior_coef=0.0)
    prompts = task.encode_prompts(["Write one sentence about a dog."], "test")
    clean = ids_of(tokenizer, " a big dog ran to a box")
    dirty = ids_of(tokenizer, " the dog ate")
    eos = tokenizer.eos_id
    # A success earns eos_reward at its last token. "the dog ate" ends before task.min_words=4 words: its EOS costs
    # what task.max_length=16 banned tokens would, so stopping early is never cheaper than going on.
    for ids, banned_tokens, last in [
        (clean, 0, 1.0),
        (dirty, sum("e" in tokenizer.decode([a]) for a in dirty[0]), -16.0),
    ]:
        actions = np.concatenate([ids, [[eos]]], axis=1)
        lengths = np.array([actions.shape[1]])
        r = task.episode_rewards(prompts, actions, lengths)
        assert banned_tokens < 16 and r.sum() == pytest.approx(last - banned_tokens)
        assert r[0, -1] == pytest.approx(last)  # special tokens have no text: EOS holds no banned letter
    batch = pad_prompts([clean[0].tolist() + [eos], dirty[0].tolist() + [eos]])
    batch[batch < 0] = eos  # actions past an episode's end are ignored
    lengths = np.array([clean.shape[1] + 1, dirty.shape[1] + 1])
    m = task.text_metrics(np.repeat(prompts, 2, axis=0), batch, lengths)
    assert m["constraint_success"] == 0.5  # "a big dog ran to a box": 7 words, no "e"; "the dog ate" fails
    assert m["mean_words"] == pytest.approx((7 + 3) / 2)


def test_prompts_keep_their_lengths_through_replay(tokenizer):
    from replay.episodes import EpisodeBatch
    from replay.shard import ReplayShard

    task = make_task(tokenizer)
    prompts = task.encode_prompts(["Write a sentence with the words dog, cat.", "Hi."], "test")
    lengths = [len(tokenizer.encode_prompt(t)) for t in ["Write a sentence with the words dog, cat.", "Hi."]]
    shard = ReplayShard(8, task.prompt_len, 4, seed=0)
    batch = EpisodeBatch(prompts, np.ones((2, 3), dtype=np.int64), np.zeros((2, 3), np.float32), np.array([3, 3]))
    assert batch.prompt_lengths.tolist() == lengths
    shard.add(batch)
    sample = shard.sample(64, beta=1.0)
    assert sorted(set(sample.prompt_lengths.tolist())) == sorted(lengths)


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("hf") / "llama", "llama")


SMALL = ["train.total_updates=12", "replay.min_size_to_sample=32", "train.eval_every=6", "task.eval_prompts=20"]
SMALL += ["task.max_length=10", "actors.batch_size=16", "learner.batch_size=16", "train.checkpoint_every=6"]


@pytest.mark.slow
def test_serial_run_generate_eval_and_export_on_a_hf_model(llama_dir, tmp_path, capsys):

    run = tmp_path / "run"
    code, out, err = run_main(
        ["train", "--config", "keywords", "--mode", "serial", "--run-dir", run, f"init.from_hf={llama_dir}"]
        + SMALL
        + ["model.q_head=separate", "learner.lr=0.01"],
        capsys,
    )
    assert code == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["learner_updates"] == 12
    assert {"keyword_coverage", "prior_perplexity", "distinct_2", "mean_words"} <= set(summary["eval"])
    assert "keyword_coverage" in summary["eval"]["baseline"]  # the warm start, on the same prompts

    code, out, err = run_main(
        ["generate", "--run-dir", run, "--prompt", keywords_prompt(["dog", "cat"]), "--json"], capsys
    )
    assert code == 0, err
    gen = json.loads(out)
    assert len(gen["values"]) == len(gen["q_taken"]) == len(gen["tokens"]) >= 1

    code, out, err = run_main(["eval", "--run-dir", run, "--prompts", "20"], capsys)
    assert code == 0, err
    assert "baseline" in json.loads((run / "eval.json").read_text())

    code, out, err = run_main(["export", "--run-dir", run, "--out", tmp_path / "exported"], capsys)
    assert code == 0, err
    ours, theirs = exported_and_ours(run, tmp_path / "exported", 20)
    assert theirs == ours
    assert len({tuple(t) for t in ours}) > 1  # the prompts lead to different texts: the check can fail


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["init.from_hf=/nonexistent/model"], "does not exist"),
        (["init.from_hf=NOTDIR"], "not a model directory"),
        (["init.from_hf=LLAMA", "init.from_run=LLAMA"], "cannot be used together"),
        (["init.from_hf=NOTCAUSAL"], "not a causal language model"),
        (["init.from_hf=NOEOS"], "no EOS token"),
        (["init.from_hf=LLAMA", "task.prompts_file=LONG"], "longer than the model's context"),
    ],
)
def test_bad_hf_input_is_one_sentence_and_exit_2(overrides, words, llama_dir, tmp_path, capsys):
    from transformers import AutoTokenizer, ViTConfig, ViTModel

    notdir = tmp_path / "file.txt"
    notdir.write_text("hello")
    notcausal = tmp_path / "vit"
    ViTModel(
        ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ).save_pretrained(notcausal)
    noeos = tmp_path / "noeos"
    save_tiny_model(noeos, "gpt2", vocab_size=300)
    tok = AutoTokenizer.from_pretrained(noeos)
    tok.eos_token = None
    tok.save_pretrained(noeos)
    long_prompts = tmp_path / "long.txt"
    long_prompts.write_text("Write a sentence about " + "the dog and " * 40 + "\n")
    subst = {"NOTDIR": notdir, "LLAMA": llama_dir, "NOTCAUSAL": notcausal, "NOEOS": noeos, "LONG": long_prompts}
    resolved = []
    for o in overrides:
        key, value = o.split("=", 1)
        resolved.append(f"{key}={subst.get(value, value)}")
    capsys.readouterr()  # what building the models above printed
    code, out, err = run_main(
        ["train", "--config", "keywords", "--mode", "serial", "--run-dir", tmp_path / "r", "task.prompt_len=512"]
        + resolved,
        capsys,
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tokenq: error:") and words in lines[0], err
    assert "Traceback" not in err


@pytest.mark.slow
def test_without_the_extra_a_hf_feature_names_the_extra(tmp_path, llama_dir):
    """`transformers` made unimportable by a package earlier on the path, as in an install without `[hf]`."""
    import os
    import subprocess

    from procs import cli

    fake = tmp_path / "site" / "transformers"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("No module named transformers")\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    for args in [
        ("train", "--config", "keywords", "--mode", "serial", f"init.from_hf={llama_dir}", "--run-dir", "r1"),
        ("pretrain", "--config", "hf-small", "--run-dir", "r2"),
    ]:
        proc = subprocess.run(cli(*args), capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert 'pip install -e ".[hf]"' in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr


def test_a_user_reward_function_reads_decoded_text(tokenizer):
    from reward_fns import short_words

    task = text_task(
        "tests.reward_fns:short_words",
        tokenizer,
        None,
        ["dog", "cat"],
        max_length=16,
        prompt_len=32,
        context=128,
        eos_reward=0.0,
        prior_coef=0.0,
        reward_fn=short_words,
    )
    prompts = task.encode_prompts([keywords_prompt(["dog", "cat"])], "test")
    actions = ids_of(tokenizer, " a dog saw elephants")
    r = task.episode_rewards(prompts, actions, np.array([actions.shape[1]]))[0]
    pieces = [tokenizer.decode([a]) for a in actions[0]]
    long_from = next(i for i in range(len(pieces)) if max(map(len, "".join(pieces[: i + 1]).split())) > 4)
    assert r[:long_from].tolist() == pytest.approx([0.1] * long_from) and not r[long_from:].any()


def test_chat_template_wraps_prompts_and_keywords_are_still_read(tmp_path):
    template = "{% for m in messages %}<|user|>{{ m['content'] }}\n{% endfor %}<|assistant|>"
    tok = train_tokenizer(400, chat_template=template)
    with_chat = HFTokenizer(tok, len(tok), "auto")
    without = HFTokenizer(tok, len(tok), "none")
    text = keywords_prompt(["dog", "cat"])
    assert tok.decode(with_chat.encode_prompt(text)) == f"<|user|>{text}\n<|assistant|>"
    assert tok.decode(without.encode_prompt(text), skip_special_tokens=True) == text
    task = text_task("keywords", with_chat, None, ["dog", "cat"], max_length=16, prompt_len=64, context=256)
    assert task.keywords_of(task.encode_prompts([text], "test")) == [["dog", "cat"]]


def _counted(fn, calls: list):
    def wrapper(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)

    return wrapper


def test_grad_checkpointing_recomputes_layers_and_gives_the_same_update():
    from learner.config import LearnerConfig
    from learner.learner import Learner
    from replay.episodes import SampledBatch

    rng = np.random.default_rng(0)
    batch = SampledBatch(
        pad_prompts([[5, 6, 7], [8, 9]]),
        rng.integers(0, 101, size=(2, 6)),
        rng.random((2, 6)).astype(np.float32),
        np.array([6, 4]),
        np.ones(2, np.float32),
        np.arange(2),
        np.arange(2),
    )
    results = []
    for checkpointing in (False, True):
        net_cfg = QNetConfig(q_head="dueling_max", hf_path="test", grad_checkpointing=checkpointing)
        net = HFQNetwork(net_cfg, lm=tiny_lm("gpt2"))
        cfg = LearnerConfig(device="cpu", metrics_every=1)
        learner = Learner(cfg, net.cfg, net=net)
        calls = []
        # count calls of a module inside the first layer (module hooks do not run again in the recomputation)
        mlp = learner.online.lm.transformer.h[0].mlp
        mlp.forward = _counted(mlp.forward, calls)
        metrics, _ = learner.update(batch)
        results.append((metrics["td_loss"], metrics["grad_norm"], len(calls)))
    (loss_a, grad_a, calls_a), (loss_b, grad_b, calls_b) = results
    assert calls_a == 1 and calls_b == 2  # the online pass, and with checkpointing its recomputation in backward
    assert loss_b == pytest.approx(loss_a, rel=1e-5) and grad_b == pytest.approx(grad_a, rel=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("arch, lora_rank", [("llama", 0), ("gpt2", 4)])
def test_local_mode_trains_a_hf_model_and_resumes(arch, lora_rank, tmp_path):
    """Ape-X on Ray with a Hugging Face Q-network (a second architecture, with LoRA), then --resume to more updates."""
    from procs import run_cli as run_installed

    model = save_tiny_model(tmp_path / arch, arch)
    run = tmp_path / "run"
    args = ["train", "--config", "keywords", "--run-dir", str(run), f"init.from_hf={model}", *SMALL]
    proc = run_installed(*args, "actors.num_actors=2", f"hf.lora_rank={lora_rank}", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["mode"] == "local" and summary["learner_updates"] == 12 and summary["env_steps"] > 0
    assert "keyword_coverage" in summary["eval"] and "keyword_coverage" in summary["eval"]["baseline"]
    # what the learner sends per publish: every weight as float32 in full, adapters and heads alone with LoRA
    trainable, sent = summary["trainable_parameters"], summary["weights_bytes_per_publish"]
    assert (trainable == summary["num_parameters"]) == (lora_rank == 0)
    if lora_rank:
        assert sent == 4 * trainable  # float32 numpy arrays, nothing else
    else:  # GPT-2's tied LM head is a second entry of the state dict
        assert 4 * trainable <= sent <= 4 * (summary["num_parameters"] + 32 * 400)
    proc = run_installed("train", "--resume", str(run), "train.total_updates=18", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((run / "summary.json").read_text())["learner_updates"] == 18
