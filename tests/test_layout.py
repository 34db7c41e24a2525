"""The layout of docs/design.md, enforced on the import graph parsed from the source (every import statement, at module
level or inside a function): packages import only packages below them, and the pure ones import no framework."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Imports run one way: tokenq/ -> distributed/ -> actors/ -> learner/ -> replay/ (each may use any below it).
LAYERS = ["replay", "learner", "actors", "distributed", "tokenq"]
# Third-party packages a layer must not import at all.
FORBIDDEN = {
    "replay": {"torch", "ray", "tensorboard"},
    "learner": {"ray", "tensorboard"},
    "actors": {"ray", "tensorboard"},
    "distributed": {"tensorboard"},
}


def imports_of(path: Path, package: str) -> set[str]:
    """Top-level names of every module `path` imports (a relative import stays in `package`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add(package if node.level else node.module.split(".")[0])
    return found


def layering_violations(root: Path) -> list[str]:
    problems = []
    for rank, package in enumerate(LAYERS):
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root)
            for name in imports_of(path, package):
                if name in LAYERS and LAYERS.index(name) > rank:
                    problems.append(f"{rel} imports {name}/ (above {package}/ in the layers)")
                if name in FORBIDDEN.get(package, ()):
                    problems.append(f"{rel} imports {name}")
    return problems


def test_the_repository_keeps_its_layers():
    assert layering_violations(REPO) == []


def test_the_check_fails_on_a_broken_rule(tmp_path):
    for package in LAYERS:
        (tmp_path / package).mkdir()
    (tmp_path / "learner" / "model.py").write_text("from actors.tokenizer import BOS\n")
    (tmp_path / "replay" / "shard.py").write_text("def f():\n    import torch\n")
    (tmp_path / "distributed" / "driver.py").write_text("from tokenq.config import Config\n")
    (tmp_path / "actors" / "rollout.py").write_text("import learner.model\nfrom replay import episodes\n")  # allowed
    assert layering_violations(tmp_path) == [
        "replay/shard.py imports torch",
        "learner/model.py imports actors/ (above learner/ in the layers)",
        "distributed/driver.py imports tokenq/ (above distributed/ in the layers)",
    ]


def test_replay_and_the_pure_modules_load_without_torch_or_ray():
    import subprocess
    import sys

    code = (
        "import sys, replay.shard, replay.durable, replay.format, actors.tokenizer, actors.policy; "
        "print(sorted({'torch', 'ray', 'tensorboard'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
