"""A sequence-level task in TRL's reward-function signature: one sentence about a topic that begins with the topic's
own word ("Write one sentence about a hospital that begins with the word "Hospital"."). SmolLM2-135M-Instruct opens
almost every answer with "The" or "A" whatever the prompt asks (held-out greedy success 0.005), and about one
sampled answer in twenty opens with the word, often enough for a learner to find what pays. It needs the prompt:
no token preference that holds in every state passes it.

    tokenq train --config lipogram init.from_hf=smollm2 task.name=custom learner.n_step=24 hf.token_bias=false \
        task.reward_fn=examples.first_word.reward:first_word task.prompt_len=64 \
        task.prompts_file=examples/first_word/train.jsonl task.eval_prompts_file=examples/first_word/eval.jsonl

The same function and prompt files go unchanged to TRL's GRPOTrainer (`scripts/vs_grpo.py --task first_word`):
each JSONL record's "topic" reaches the function as the keyword list `topic`.
"""

import re

SUCCESS = 1.0  # task.success_reward: a score of 1 is a success, anything less is not
WORD = re.compile(r"[A-Za-z']+")


def opens_with(text: str, topic: str) -> bool:
    """Whether the first word of `text` is `topic`, in any case, or its plural or possessive."""
    words = WORD.findall(text)
    if not words:
        return False
    first, t = words[0].lower(), topic.lower()
    return first in (t, t + "s", t + "es", t + "'s")


def first_word(prompts, completions, topic=None, **kwargs) -> list[float]:
    """1 for a completion of at least 6 words whose first word is its topic; otherwise 0, minus 1 under 6 words.
    Without a `topic` column the topic is the prompt's last quoted word."""
    scores = []
    for i, completion in enumerate(completions):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        t = topic[i] if topic is not None else _quoted(prompts[i])
        short = len(WORD.findall(text)) < 6
        scores.append(SUCCESS if opens_with(text, t) and not short else (-1.0 if short else 0.0))
    return scores


def _quoted(prompt) -> str:
    text = prompt if isinstance(prompt, str) else prompt[-1]["content"]
    found = re.findall(r'"([^"]+)"', text)
    return found[-1] if found else ""
