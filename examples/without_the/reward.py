"""A second sequence-level task in TRL's reward-function signature: one sentence about a topic without the word
"the". SmolLM2-135M-Instruct's greedy answers mostly use the word whatever the prompt asks (held-out success 0.20
greedy, 0.13 sampled), and its sampled answers avoid it often enough for a learner to find what pays.

    tokenq train --config lipogram init.from_hf=smollm2 task.name=custom \
        task.reward_fn=examples.without_the.reward:without_the task.prompt_len=64 \
        task.prompts_file=examples/without_the/train.jsonl task.eval_prompts_file=examples/without_the/eval.jsonl

The same function and prompt files go unchanged to TRL's GRPOTrainer (`scripts/vs_grpo.py --task without_the`).
"""

import re

SUCCESS = 1.0  # task.success_reward: a score of 1 is a success, anything less is not
WORD = re.compile(r"[A-Za-z']+")


def without_the(prompts, completions, topic=None, **kwargs) -> list[float]:
    """1 for a completion of at least 6 words, none of them "the" (in any case), that names its topic; otherwise
    minus the share of words that are "the", minus 1 under 6 words, minus 0.5 where the topic is missing."""
    scores = []
    for i, completion in enumerate(completions):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        words = [w.lower() for w in WORD.findall(text)]
        share = words.count("the") / max(1, len(words))
        penalty = share + (1.0 if len(words) < 6 else 0.0)
        if topic is not None and topic[i].lower() not in text.lower():
            penalty += 0.5
        scores.append(SUCCESS if penalty == 0 else -penalty)
    return scores
