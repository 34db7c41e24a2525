"""Config sections: one dueling switch (model.q_head), old spellings answered with one sentence naming the new
one, and presets that need a user's model printed without it."""

import pytest

from tokenq.config import ConfigError, load_config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.dueling=true"], "model.dueling is no longer a setting; use model.q_head"),
        (["model.dueling_norm=max"], "model.dueling_norm is no longer a setting; use model.q_head: dueling"),
        (["task.max_prompt_tokens=48"], "task.max_prompt_tokens is no longer a setting; use task.prompt_len"),
        (["model.lora_rank=8"], "model.lora_rank is no longer a setting; use hf.lora_rank"),
        (["learner.head_lr=0.1"], "learner.head_lr is no longer a setting; use hf.head_lr"),
        (["model.vocab_size=100"], "model.vocab_size is no longer a setting; the network takes its task's vocabulary"),
        (["model.max_gen_len=9"], "model.max_gen_len is no longer a setting; the network takes its task's episode"),
        (["hf.lora_rank=-1", "init.from_hf=x"], "hf.lora_rank must be >= 0"),
        (["hf.token_bias=true"], "hf.token_bias=True needs a Hugging Face model (init.from_hf)"),
        (["model.q_head=logits"], "model.q_head=logits is now model.q_head=plain"),
        (["model.q_head=separate"], "model.q_head=separate needs a Hugging Face model"),
        (["init.from_hf=dir", "model.q_head=dueling"], "on a Hugging Face model use dueling_max"),
        (["model.q_head=max"], "model.q_head must be one of plain, dueling, dueling_max, separate, soft, got 'max'"),
    ],
)
def test_old_and_bad_spellings_are_one_sentence(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config("reverse", overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_presets_choose_their_heads_with_the_one_switch():
    assert load_config("reverse").model.q_head == "plain"
    assert load_config("keywords").model.q_head == "dueling_max"  # A - max A: the LM's greedy policy as warm start
    assert load_config("lipogram", ["init.from_hf=dir"]).model.q_head == "soft"  # V + beta (log pi - log pi_ref)


def test_a_preset_that_needs_the_users_model_prints_but_does_not_run_without_it():
    from tokenq.config import to_yaml

    text = to_yaml(load_config("lipogram", for_run=False), "lipogram")
    assert "  train_layers: 2  #" in text and "  from_hf: ''  #" in text
    with pytest.raises(ConfigError, match=r"needs a Hugging Face model \(init.from_hf\)"):
        load_config("lipogram")
    with pytest.raises(ConfigError, match="model.dueling is no longer a setting"):  # renames still answer
        load_config("lipogram", ["model.dueling=true"], for_run=False)
