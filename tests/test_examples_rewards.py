"""The sequence-level example tasks (examples/lowercase, examples/without_the, examples/first_word) and the reward
GRPO gets in scripts/vs_grpo.py: their prompt files read as tokenq reads them, and their scores follow their rules."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from actors.text import read_prompt_records
from examples.first_word.reward import first_word
from examples.lowercase.reward import SUCCESS, lowercase_sentence
from examples.without_the.reward import without_the

ROOT = Path(__file__).resolve().parent.parent


def load_vs_grpo():
    spec = importlib.util.spec_from_file_location("vs_grpo", ROOT / "scripts/vs_grpo.py")
    vs_grpo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vs_grpo)
    return vs_grpo


@pytest.mark.parametrize(
    "name, asks",
    [("lowercase", "lower case"), ("without_the", 'the word "the"'), ("first_word", "begins with the word")],
)
def test_the_example_prompt_files_give_each_prompt_its_topic(name, asks):
    train = read_prompt_records(ROOT / "examples" / name / "train.jsonl")
    heldout = read_prompt_records(ROOT / "examples" / name / "eval.jsonl")
    assert (len(train), len(heldout)) == (181, 200)
    for record in train + heldout:
        assert record.columns["topic"].lower() in record.prompt.lower() and asks in record.prompt
    assert not {r.columns["topic"] for r in train} & {r.columns["topic"] for r in heldout}


def test_lowercase_pays_only_a_long_lowercase_sentence_that_names_its_topic():
    completions = [
        "a mug holds hot tea on a cold day.",
        "A mug holds hot tea on a cold day.",
        "a mug holds tea.",
        "a cup holds hot tea on a cold day.",
        [{"role": "assistant", "content": "my mug holds hot tea on cold days."}],
    ]
    scores = lowercase_sentence(["p"] * 5, completions, topic=["mug"] * 5)
    assert scores[0] == SUCCESS and scores[4] == SUCCESS
    assert scores[1] == -1 / 9  # one capitalised word of nine
    assert scores[2] == -1.0 and scores[3] == -0.5
    assert lowercase_sentence(["p"], ["a short one"]) == [-1.0]  # without topics only case and length count


def test_without_the_pays_only_a_long_sentence_without_the_word_that_names_its_topic():
    completions = [
        "a mug holds hot tea on a cold day.",
        "The mug holds hot tea on a cold day.",
        "a mug holds tea.",
        "a cup holds hot tea on a cold day.",
        [{"role": "assistant", "content": "there, my mug holds theory and tea on cold days."}],
    ]
    scores = without_the(["p"] * 5, completions, topic=["mug"] * 5)
    assert scores[0] == SUCCESS and scores[4] == SUCCESS  # "there" and "theory" are not "the"
    assert scores[1] == -1 / 9  # "The" is one word of nine
    assert scores[2] == -1.0 and scores[3] == -0.5
    assert without_the(["p"], ["the the end"]) == [-2 / 3 - 1.0]


def test_first_word_pays_only_a_long_sentence_that_opens_with_its_topic():
    completions = [
        '"Mugs hold hot tea on a cold day."',
        "A mug holds hot tea on a cold day.",
        "Mug holds tea.",
        "Mugshots are taken by the police every day.",
        [{"role": "assistant", "content": "Mug's handle broke off on a cold day."}],
    ]
    scores = first_word(["p"] * 5, completions, topic=["mug"] * 5)
    assert scores == [SUCCESS, 0.0, -1.0, 0.0, SUCCESS]  # a plural or possessive counts, a longer word does not
    # without a topic column, the prompt's quoted word is the topic
    assert first_word(['Write about a mug that begins with the word "Mug".'], ["Mug holds tea on cold days."]) == [1.0]


def test_grpo_gets_the_example_functions_unchanged():
    vs_grpo = load_vs_grpo()
    assert vs_grpo.grpo_reward("without_the") is without_the
    assert vs_grpo.grpo_reward("lowercase") is lowercase_sentence
    assert vs_grpo.grpo_reward("first_word") is first_word
    assert "task.reward_fn=examples.without_the.reward:without_the" in vs_grpo.TASKS["without_the"]


def test_grpo_gets_the_lipogram_rule_as_one_sequence_score():
    vs_grpo = load_vs_grpo()
    scores = vs_grpo.lipogram_reward(
        ["p"] * 3, ["a cat sat on a warm rug today", "a cat sat on the rug today", "a cat sat"]
    )
    assert scores == [2.0, -1 / 7, -1.0]


def test_vs_grpo_gives_tokenq_the_task_s_settings_then_the_user_s():
    vs_grpo = load_vs_grpo()
    cfg, overrides = vs_grpo.tokenq_config("model", "first_word", 60, ["learner.lr=0.0005", "learner.n_step=6"])
    assert overrides[-3:] == ["learner.n_step=24", "learner.lr=0.0005", "learner.n_step=6"]
    assert (cfg.learner.lr, cfg.learner.n_step, cfg.hf.token_bias, cfg.task.name) == (0.0005, 6, False, "custom")
    cfg, _ = vs_grpo.tokenq_config("model", "lipogram", 60)
    assert (cfg.learner.n_step, cfg.hf.token_bias, cfg.task.name) == (4, True, "lipogram")
