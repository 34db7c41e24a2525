import numpy as np
import pytest

from actors.tasks import PromptSource, TaskError, heldout_prompts, make_task
from actors.tokenizer import BOS, EOS, PAD, SEP, CharTokenizer


def test_reverse_vocabulary_is_design_md():
    tok = make_task("reverse").tokenizer
    assert (PAD, BOS, EOS, SEP) == (0, 1, 2, 3)
    assert tok.encode("abcdefgh") == list(range(4, 12))
    assert tok.vocab_size == 12
    assert tok.decode([4, 5, EOS], skip_special=False) == "ab<eos>"


def test_reverse_rewards_success_and_optimum():
    task = make_task("reverse")
    assert (task.prompt_len, task.max_steps) == (6, 8)
    tok = task.tokenizer
    prompts = np.array([tok.encode("abcdef")] * 3)
    perfect = np.array([tok.encode("fedcba") + [EOS]])
    # two wrong letters, EOS one step late: reward 4 letters, no EOS bonus
    flawed = np.array([tok.encode("fxdcya".replace("x", "a").replace("y", "a")) + [4, EOS]])
    no_eos = np.array([tok.encode("fedcbaaa")])
    r = task.episode_rewards(prompts[:1], perfect, np.array([7]))
    assert r.tolist() == [[1, 1, 1, 1, 1, 1, 1]]
    assert task.episode_rewards(prompts[:1], flawed, np.array([8])).sum() == 4
    assert task.episode_rewards(prompts[:1], no_eos, np.array([8])).sum() == 6
    assert task.success(prompts[:1], perfect, np.array([7])).tolist() == [True]
    assert task.success(prompts[:1], no_eos, np.array([8])).tolist() == [False]
    assert task.optimal_return(prompts).tolist() == [7, 7, 7]


def test_copy_sort_add_answers():
    tok = CharTokenizer("abcdefgh")
    p = np.array([tok.encode("cabhgd")])
    assert make_task("copy").answers(p) == [tok.encode("cabhgd")]
    assert make_task("sort").answers(p) == [tok.encode("abcdgh")]
    add = make_task("add")
    q = np.array([add.tokenizer.encode("57+68")])
    assert add.tokenizer.decode(add.answers(q)[0]) == "125"
    assert add.max_steps == 4 and add.prompt_len == 5
    drawn = add.sample_prompts(np.random.default_rng(0), 50)
    assert all(add.tokenizer.decode(row)[2] == "+" for row in drawn)


def test_heldout_prompts_are_never_trained_on():
    task = make_task("reverse", prompt_len=2)  # 64 prompts: hold out 10
    held = heldout_prompts(task, 10, seed=1)
    assert len({row.tobytes() for row in held}) == 10
    train = PromptSource(task, seed=2, heldout=held).sample(2000)
    assert not {row.tobytes() for row in train} & {row.tobytes() for row in held}


def test_tiny_evaluates_on_every_prompt():
    task = make_task("tiny")
    assert task.enumerable and len(heldout_prompts(task, 500, 0)) == 4


def test_user_reward_function_and_task_class():
    fn_task = make_task("examples.user_task:echo_first")
    tok = fn_task.tokenizer
    prompts = np.array([tok.encode("abcdef")])
    actions = np.array([tok.encode("aab") + [EOS]])
    assert fn_task.episode_rewards(prompts, actions, np.array([4])).tolist() == [[1, 1, 0, 0]]
    pal = make_task("examples.user_task:Palindrome")
    assert pal.optimal_return(pal.sample_prompts(np.random.default_rng(0), 2)).tolist() == [7, 7]


def test_bad_tasks_are_one_sentence():
    with pytest.raises(TaskError, match="unknown task 'nope'"):
        make_task("nope")
    with pytest.raises(TaskError, match="cannot load task"):
        make_task("no_such_module_xyz:f")

    def boom(prompt, generated):
        raise RuntimeError("bad reward")

    from actors.tasks import RewardFunctionTask

    task = RewardFunctionTask(boom, name="boom")
    with pytest.raises(TaskError, match="reward function boom raised RuntimeError: bad reward"):
        task.rewards(np.array([[4] * 6]), np.array([[4]]), 0)
