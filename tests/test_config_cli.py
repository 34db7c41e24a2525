import pytest
from procs import run_cli

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


def test_presets_are_the_packaged_yaml_files():
    from tokenq.config import PRESET_DIR, PRESETS

    assert PRESETS == [
        "add",
        "article",
        "copy",
        "fluency",
        "hf-small",
        "keywords",
        "lipogram",
        "reverse",
        "sort",
        "tiny",
    ]
    assert all((PRESET_DIR / f"{name}.yaml").is_file() for name in PRESETS)
    article = load_config("article")
    assert (article.task.max_length, article.model.max_gen_len, article.model.vocab_size) == (100, 100, 10_000)
    fluency = load_config("fluency")  # `preset: keywords` inside a preset file
    assert (fluency.task.name, fluency.task.prior_reward, fluency.model.copy_head) == ("fluency", "logp", True)


def test_model_overrides_with_init_from_run_are_refused():
    with pytest.raises(ConfigError, match="model.d_model cannot be changed together with init.from_run"):
        load_config("keywords", ["init.from_run=/some/run", "model.d_model=32"])
    assert load_config("keywords", ["init.from_run=/some/run", "model.d_model=128"]).model.d_model == 128  # unchanged
