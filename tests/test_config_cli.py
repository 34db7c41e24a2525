import pytest

from tests.procs import run_cli
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
