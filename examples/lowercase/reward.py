"""A sequence-level task of your own, in TRL's reward-function signature: one sentence about a topic, all in lower
case. SmolLM2-135M-Instruct capitalises its first word whatever the prompt asks, so its warm start fails it.

    tokenq train --config lipogram init.from_hf=smollm2 task.name=custom \
        task.reward_fn=examples.lowercase.reward:lowercase_sentence task.prompt_len=64 \
        task.prompts_file=examples/lowercase/train.jsonl task.eval_prompts_file=examples/lowercase/eval.jsonl

The same function and prompt files go unchanged to TRL's GRPOTrainer (`scripts/vs_grpo.py --task lowercase`):
each JSONL record's "topic" reaches the function as the keyword list `topic`.
"""

SUCCESS = 1.0  # task.success_reward: a score of 1 is a success, anything less is not


def lowercase_sentence(prompts, completions, topic=None, **kwargs) -> list[float]:
    """1 for a completion of at least 6 words with no capital letter that names its topic; otherwise minus the
    share of words holding a capital, minus 1 under 6 words, minus 0.5 where the topic is missing."""
    scores = []
    for i, completion in enumerate(completions):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        words = text.split()
        capitals = sum(any(ch.isupper() for ch in w) for w in words) / max(1, len(words))
        short = len(words) < 6
        missing = topic is not None and topic[i].lower() not in text.lower()
        if not (capitals or short or missing):
            scores.append(SUCCESS)
        else:
            scores.append(-capitals - (1.0 if short else 0.0) - (0.5 if missing else 0.0))
    return scores
