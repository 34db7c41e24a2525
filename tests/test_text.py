"""Word tokenizer, corpora and prompt files, and the text tasks' rewards, with hand-computed numbers."""

import json

import numpy as np
import pytest
import torch
from procs import run_cli

from actors.text import UNK, TextError, WordTokenizer, read_corpus, read_prompt_file
from actors.text_task import PriorModel, text_task
from actors.tokenizer import EOS
from learner.model import QNetConfig, QNetwork


def test_word_tokenizer_orders_by_frequency_and_round_trips(tmp_path):
    sents = ["The cat sat.", "the dog sat", "THE cat"]
    tok = WordTokenizer.from_sentences(sents, max_vocab=8)  # 5 specials + 3 words
    assert tok.vocab == ["the", "cat", "sat"] and tok.vocab_size == 8
    assert tok.encode("the cat") == [5, 6]
    assert tok.encode("the dog", unknown_ok=True) == [5, UNK]
    with pytest.raises(TextError, match="word 'dog' is not in the vocabulary"):
        tok.encode("the dog")
    tok.save(tmp_path / "tok.json")
    assert WordTokenizer.load(tmp_path / "tok.json").vocab == tok.vocab
    data = json.loads((tmp_path / "tok.json").read_text())
    data["vocab"][0] = "a"
    (tmp_path / "tok.json").write_text(json.dumps(data))
    with pytest.raises(TextError, match="tok.json is corrupted"):
        WordTokenizer.load(tmp_path / "tok.json")


def test_corpus_and_prompt_file_errors_name_the_file(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(TextError, match="empty.txt is empty"):
        read_corpus(empty)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"hello \xff\xfe world")
    with pytest.raises(TextError, match="bin.txt is not UTF-8 text"):
        read_corpus(binary)
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"text": "a b c"}\n{"body": "x"}\n')
    with pytest.raises(TextError, match="c.jsonl line 2 has no string field 'text'"):
        read_corpus(jsonl)
    jsonl.write_text('{"text": "Hello, world!"}\n')
    assert read_corpus(jsonl) == ["Hello, world!"]
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "cat dog"}\n')
    assert read_prompt_file(prompts) == ["cat dog"]
    with pytest.raises(TextError, match="cannot read prompt file"):
        read_prompt_file(tmp_path / "missing.txt")


def _uniform_prior(vocab: int, bias: list[float]) -> PriorModel:
    """A prior whose logits are `bias` at every position: log p is log_softmax(bias) everywhere."""
    net = QNetwork(QNetConfig(vocab_size=vocab, arch="decoder", max_prompt_len=2, max_gen_len=6))
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.copy_(torch.tensor(bias))
    return PriorModel(net)


def test_keywords_rewards_by_hand():
    tok = WordTokenizer(["cat", "dog", "sat", "ran"])  # ids 5, 6, 7, 8
    bias = [0.0] * 5 + [np.log(4.0), 0.0, np.log(2.0), 0.0]
    prior = _uniform_prior(9, bias)
    task = text_task(
        "keywords",
        tok,
        prior,
        ["cat", "dog", "sat", "ran"],
        num_keywords=2,
        max_length=6,
        keyword_reward=1.0,
        eos_reward=0.5,
        prior_coef=2.0,
        prior_reward="gap",
    )
    prompts = np.array([[5, 6]])  # "cat dog"
    actions = np.array([[5, 5, 7, 6, EOS, 0]])  # cat cat sat dog <eos> (pad)
    r = task.episode_rewards(prompts, actions, np.array([5]))
    # gap = log p(a) - log p(best) = bias[a] - log 4: cat 0, sat log(2) - log(4) = -log 2, dog/EOS -log 4
    lg2, lg4 = np.log(2.0), np.log(4.0)
    expected = [1.0 + 0.0, 0.0 + 0.0, -2 * lg2, 1.0 - 2 * lg4, 0.5 - 2 * lg4, 0.0]
    np.testing.assert_allclose(r[0], expected, rtol=1e-5, atol=1e-6)
    assert task.keyword_coverage(prompts, actions, np.array([5])).tolist() == [1.0]
    assert task.success(prompts, actions, np.array([5])).tolist() == [True]
    half = np.array([[5, 7, 7, EOS, 0, 0]])
    assert task.keyword_coverage(prompts, half, np.array([4])).tolist() == [0.5]
    m = task.text_metrics(prompts, actions, np.array([5]))
    # distinct_2: bigrams (5,5) (5,7) (7,6) (6,2): 4 of 4
    assert m["distinct_2"] == 1.0 and m["keyword_coverage"] == 1.0
    # perplexity: p = softmax(bias): Z = 4 + 4 + 2 + 6*1... computed from the logits directly
    logp = torch.log_softmax(torch.tensor(bias), 0).numpy()
    nll = -np.mean([logp[5], logp[5], logp[7], logp[6], logp[EOS]])
    assert m["prior_perplexity"] == pytest.approx(np.exp(nll), rel=1e-5)


def test_prompt_words_outside_vocabulary_are_one_sentence(tmp_path):
    from actors.tasks import TaskError

    tok = WordTokenizer(["cat", "dog", "sat"])
    task = text_task("keywords", tok, None, ["cat", "dog", "sat"], max_length=6, prior_coef=0.0)
    with pytest.raises(TaskError, match=r"p.txt line 2 \('cat zebra'\): word 'zebra' is not in the vocabulary"):
        task.encode_prompts(["cat dog", "cat zebra"], "p.txt")
    with pytest.raises(TaskError, match="has 3 tokens; task keywords takes 2"):
        task.encode_prompts(["cat dog sat"], "p.txt")


def test_pretrain_rejects_an_empty_corpus_on_the_command_line(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    proc = run_cli("pretrain", "--corpus", str(empty), "--run-dir", str(tmp_path / "run"))
    assert proc.returncode == 2 and "empty.txt is empty" in proc.stderr and "Traceback" not in proc.stderr


def test_lipogram_is_the_same_composition_on_the_word_tokenizer():
    """The lipogram's parts (minimum words, banned letters, the success bonus) read decoded text, so they work on
    word tokens as on subwords: a token with an "e" costs banned_reward, a success earns eos_reward at its end, and
    ending before min_words words costs what max_length banned tokens would."""
    tok = WordTokenizer(["a", "big", "dog", "ran", "the", "ate", "cat"])  # ids 5..11
    task = text_task("lipogram", tok, None, ["dog", "cat"], max_length=8, banned_reward=-1.0, eos_reward=1.0)
    assert task.prompt_len == 1 and task.encode_prompts(["dog"], "t").tolist() == [[7]]  # a bare topic word
    long_clean = np.array([[5, 6, 7, 8, EOS]])  # a big dog ran <eos>: 4 words, no "e"
    short_dirty = np.array([[10, 7, 9, EOS, 0]])  # ate dog the <eos>: 3 words, two with an "e"
    prompts = np.array([[7]])
    r = task.episode_rewards(prompts, long_clean, np.array([5]))[0]
    assert r.tolist() == [0, 0, 0, 0, 1.0]
    r = task.episode_rewards(prompts, short_dirty, np.array([4]))[0]
    assert r.tolist() == [-1.0, 0, -1.0, -8.0, 0]  # "ate", "the", and an early EOS (8 = max_length banned tokens)
    both = np.concatenate([long_clean, short_dirty])
    assert task.success(np.repeat(prompts, 2, 0), both, np.array([5, 4])).tolist() == [True, False]
    m = task.text_metrics(np.repeat(prompts, 2, 0), both, np.array([5, 4]))
    assert m["constraint_success"] == 0.5 and m["mean_words"] == 3.5
    # an answer cut off at the step limit with too few words pays as an early EOS does ("1111..." is no way out),
    # charged at its last step only: the per-step rewards of the steps before it have nothing to charge
    short = text_task("lipogram", tok, None, ["dog", "cat"], max_length=3, banned_reward=-1.0, eos_reward=1.0)
    cut = np.array([[5, 7, 5]])  # a dog a: 3 words of min_words 4, no "e", no EOS
    assert short.episode_rewards(prompts, cut, np.array([3]))[0].tolist() == [0, 0, -3.0]
    assert [short.rewards(prompts, cut, t)[0] for t in range(3)] == [0, 0, -3.0]
