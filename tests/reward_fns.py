"""Reward functions that fail on purpose, loaded by tests as user tasks (`task.name=tests.reward_fns:NAME`)."""

calls = 0


def explodes_later(prompt: str, generated: str) -> float:
    """Rewards like echo_first for a while, then raises, as a user's buggy function would mid-run."""
    global calls
    calls += 1
    if calls > 6000:
        raise RuntimeError("lookup table missing")
    return 1.0 if generated[-1:] == prompt[:1] else 0.0


def returns_nan(prompt: str, generated: str) -> float:
    return float("nan")


def short_words(prompt: str, generated: str) -> float:
    """Decoded text in, a number out: +0.1 while every word so far has at most four letters."""
    return 0.1 if all(len(w) <= 4 for w in generated.split()) else 0.0
