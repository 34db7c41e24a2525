"""Two ways to bring your own task: `tokenq train task.name=examples.user_task:echo_first` (a reward function)
or `task.name=examples.user_task:Palindrome` (a Task subclass). `module:attribute` is imported from the working
directory (run from the repository root here) or from anywhere on PYTHONPATH."""

import numpy as np

from actors.tasks import LetterTask, TargetTask


def echo_first(prompt: str, generated: str) -> float:
    """Called after every token with the text so far: +1 when the newest token repeats the prompt's first letter."""
    return 1.0 if generated[-1:] == prompt[:1] else 0.0


class Palindrome(LetterTask, TargetTask):
    """Answer: the prompt followed by its reverse, then EOS (a Task subclass with exact success)."""

    name = "palindrome"

    def __init__(self, prompt_len: int = 3):
        super().__init__(prompt_len, "abcd", extra_steps=prompt_len + 2)

    def answers(self, prompts: np.ndarray) -> list[list[int]]:
        return [row.tolist() + row[::-1].tolist() for row in prompts]
