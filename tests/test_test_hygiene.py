"""The test files import shared helpers from helper modules (conftest.py, hf_models.py, procs.py, ...), never from
one another: importing a test file runs its module-level setup and lets pytest collect its tests twice."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_test_module(name: str) -> bool:
    return any(part.startswith("test_") for part in name.split("."))


def imported_test_modules(source: str) -> list[str]:
    """The test_* modules a source file imports, in every spelling: `import test_x`, `from test_x import f`,
    `from tests.test_x import f`, `from tests import test_x`, `from . import test_x`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if _is_test_module(module):
                found.append(module)
            else:
                found += [f"{module}.{a.name}".lstrip(".") for a in node.names if a.name.startswith("test_")]
    return found


def test_the_detector_finds_every_spelling_and_nothing_else():
    source = (
        "import test_hf\nimport os, tests.test_bench as tb\nfrom test_hf import run\nfrom tests.test_lora import X\n"
        "from tests import test_replay, procs\nfrom . import test_scale\n"
        "from hf_models import tiny_lm\nfrom procs import run_cli\nimport pytest\nfrom tests import conftest\n"
        "def f():\n    from test_model import g\n"
    )
    assert imported_test_modules(source) == [
        "test_hf",
        "tests.test_bench",
        "test_hf",
        "tests.test_lora",
        "tests.test_replay",
        "test_scale",
        "test_model",
    ]


def test_no_test_file_imports_another():
    files = sorted(TESTS.glob("test_*.py"))
    assert len(files) > 20  # the glob found the suite
    offenders = {f.name: imported_test_modules(f.read_text()) for f in files}
    assert {name: found for name, found in offenders.items() if found} == {}
