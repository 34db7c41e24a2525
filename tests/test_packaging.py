from pathlib import Path

import actors
import distributed
import learner

REPO = Path(__file__).resolve().parents[1]


def test_top_level_packages_resolve_to_this_repository():
    # dask ships a top-level `distributed` too; ours must win.
    for module in (actors, learner, distributed):
        assert Path(module.__file__).resolve().parent.parent == REPO
    assert hasattr(distributed, "__path__") and (REPO / "distributed" / "cli.py").exists()
    from distributed import cli

    assert callable(cli.main)


def test_pure_modules_import_neither_ray_nor_tensorboard():
    pure = [
        "actors/tokenizer.py",
        "actors/tasks.py",
        "learner/losses.py",
        "distributed/sum_tree.py",
        "distributed/replay.py",
        "learner/learner.py",
        "actors/rollout.py",
        "learner/tabular.py",
    ]
    for rel in pure:
        text = (REPO / rel).read_text()
        assert "import ray" not in text and "tensorboard" not in text, rel
