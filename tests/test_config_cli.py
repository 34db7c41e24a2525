import pytest
from procs import run_cli, run_main

from tokenq.config import ConfigError, load_config


def test_overrides_are_typed():
    cfg = load_config("reverse", ["learner.gamma=0.9", "train.stop_at_target=true", "replay.capacity=1_000"])
    assert cfg.learner.gamma == 0.9 and cfg.train.stop_at_target is True and cfg.replay.capacity == 1000
    assert load_config("tiny").task.name == "tiny"


def test_yaml_config_with_preset(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("preset: tiny\nlearner:\n  lr: 0.002\nactors:\n  epsilon: 0.5\n")
    cfg = load_config(str(path))
    assert (cfg.task.name, cfg.learner.lr, cfg.actors.epsilon) == ("tiny", 0.002, 0.5)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["learner.gamma=1.0"], "learner.gamma must be in [0, 1), got 1.0"),
        (["actors.epsilon=1.5"], "actors.epsilon must be in [0, 1], got 1.5"),
        (["actors.epsilon=-0.1"], "actors.epsilon must be in [0, 1], got -0.1"),
        (["learner.lrr=0.1"], "unknown config key 'learner.lrr'"),
        (["nosection.x=1"], "unknown config key 'nosection.x'"),
        (["learner.batch_size=many"], "learner.batch_size must be an integer, got 'many'"),
        (["train.stop_at_target=maybe"], "train.stop_at_target must be true or false"),
        (["model.n_heads=3"], "model.d_model (64) must be divisible by model.n_heads (3)"),
        (["replay.num_shards=0"], "replay.num_shards must be at least 1, got 0"),
        (["learner.device=tpu"], "learner.device must be auto, cpu or cuda"),
        (["gamma"], "override 'gamma' must look like section.key=value"),
    ],
)
def test_bad_config_is_one_sentence(overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config("reverse", overrides)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_yaml_types(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("learner:\n  gamma: [1, 2]\n")
    with pytest.raises(ConfigError, match="learner.gamma must be a number"):
        load_config(str(path))
    path.write_text("learner: [\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(str(path))


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--mode", "serial", "--config", "nope"], "--config 'nope' is neither a preset"),
        (["train", "--mode", "serial", "task.name=unknown_task"], "unknown task 'unknown_task'"),
        (["train", "--mode", "serial", "learner.gamma=1"], "learner.gamma must be in [0, 1)"),
        (["train", "--mode", "serial", "actors.epsilon=2"], "actors.epsilon must be in [0, 1]"),
        (["eval", "--run-dir", "/nonexistent/run"], "is not a tokenq run directory"),
    ],
)
def test_cli_bad_input_exits_nonzero_with_one_line(args, message, tmp_path):
    proc = run_cli(*args, "--run-dir", str(tmp_path / "r")) if args[0] == "train" else run_cli(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_every_config_field_has_a_comment():
    import dataclasses

    from tokenq.config import SECTIONS, Config, field_docs

    cfg = Config()
    for section in SECTIONS:
        obj = getattr(cfg, section)
        docs = field_docs(type(obj))
        missing = [f.name for f in dataclasses.fields(obj) if not docs.get(f.name)]
        assert missing == [], f"{section}: {missing}"
    assert field_docs(type(cfg.learner))["gamma"] == "discount factor in [0, 1)"


def test_tokenq_config_prints_yaml_that_train_takes_back(tmp_path):
    import yaml

    proc = run_cli("config", "keywords", "learner.lr=0.0005")
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("  ")]
    assert lines and all("  # " in ln and not ln.rstrip().endswith("#") for ln in lines)  # a comment per field
    path = tmp_path / "my.yaml"
    path.write_text(proc.stdout)
    assert yaml.safe_load(proc.stdout)["learner"]["lr"] == 0.0005
    assert load_config(str(path)) == load_config("keywords", ["learner.lr=0.0005"])
    assert load_config(str(path), ["init.from_run=/some/run"]).init.from_run == "/some/run"  # its model is the preset's


# The presets the README's table promises, each with the task it trains and settings its file makes (by hand from
# tokenq/presets/NAME.yaml; the defaults are task reverse, model.d_model 64, actors.epsilon 0.4, actors.epsilon_alpha
# 7). lipogram validates only with a Hugging Face model named, which it is not loaded for.
PROMISED_PRESETS = {
    "add": ("add", {}),
    "article": (
        "reverse",
        {"model.d_model": 256, "model.n_enc_layers": 6, "model.arch": "encdec", "task.max_length": 100},
    ),
    "copy": ("copy", {}),
    # `preset: keywords` inside a preset file: keywords' network, its own reward
    "fluency": ("fluency", {"model.d_model": 128, "task.keyword_reward": 0.0, "task.prior_reward": "logp"}),
    "hf-small": ("keywords", {"model.d_model": 192, "task.vocab_size": 4096, "pretrain.hf_arch": "llama"}),
    "keywords": ("keywords", {"model.d_model": 128, "model.q_head": "dueling_max", "task.keyword_reward": 2.0}),
    "lipogram": (
        "lipogram",
        {"learner.backup": "soft", "model.q_head": "soft", "hf.train_layers": 2, "task.banned_reward": -0.5},
    ),
    "reverse": ("reverse", {"actors.epsilon_alpha": 0.0}),
    "sort": ("sort", {}),
    "tiny": ("tiny", {"actors.epsilon": 1.0, "actors.batch_size": 16, "replay.min_size_to_sample": 64}),
}
PRESET_OVERRIDES = {"lipogram": ["init.from_hf=/some/smollm2"]}


def test_the_package_ships_exactly_the_promised_presets():
    from tokenq.config import PRESET_DIR

    assert sorted(p.stem for p in PRESET_DIR.glob("*.yaml")) == sorted(PROMISED_PRESETS)


@pytest.mark.parametrize("name", sorted(PROMISED_PRESETS))
def test_every_promised_preset_loads_with_its_settings(name):
    task, settings = PROMISED_PRESETS[name]
    cfg = load_config(name, PRESET_OVERRIDES.get(name))  # load_config validates
    assert cfg.task.name == task
    for key, value in settings.items():
        section, field = key.split(".")
        assert getattr(getattr(cfg, section), field) == value, key


def test_a_preset_file_names_its_files_relative_to_itself():
    from tokenq.config import PRESET_DIR

    cfg = load_config("lipogram", PRESET_OVERRIDES["lipogram"])
    assert cfg.task.prompts_file == str(PRESET_DIR / "topics" / "train.txt")
    assert cfg.task.eval_prompts_file == str(PRESET_DIR / "topics" / "eval.txt")


@pytest.mark.parametrize("name", sorted(PROMISED_PRESETS))
def test_tokenq_config_prints_every_field_of_every_section_with_a_comment(name, capsys):
    import dataclasses
    import re

    import yaml

    from tokenq.config import Config

    overrides = PRESET_OVERRIDES.get(name, [])
    # in this process (importing peft, which lipogram's check does, once): the command's own process is tested above
    code, out, err = run_main(["config", name, *overrides], capsys)
    assert code == 0, err
    printed: dict[str, list[str]] = {}
    for line in out.splitlines()[2:]:  # a header comment and `preset: NAME` first
        if not line.startswith("  "):
            printed[line.removesuffix(":")] = []
            continue
        match = re.fullmatch(r"  (\w+): .*?  # (.+)", line)
        assert match, line  # every field line ends in a non-empty comment
        printed[list(printed)[-1]].append(match.group(1))
    # the sections and their fields, in order, as the dataclasses declare them
    cfg = Config()
    sections = {s.name: [f.name for f in dataclasses.fields(getattr(cfg, s.name))] for s in dataclasses.fields(cfg)}
    assert printed == sections
    # every value as loaded, and the preset it starts from
    assert yaml.safe_load(out) == {"preset": name, **dataclasses.asdict(load_config(name, overrides))}
    assert "  gamma: 0.99  # discount factor in [0, 1)" in out.splitlines()


def test_model_overrides_with_init_from_run_are_refused():
    with pytest.raises(ConfigError, match="model.d_model cannot be changed together with init.from_run"):
        load_config("keywords", ["init.from_run=/some/run", "model.d_model=32"])
    assert load_config("keywords", ["init.from_run=/some/run", "model.d_model=128"]).model.d_model == 128  # unchanged
