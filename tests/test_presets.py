"""The preset list has one source, tokenq/presets: the CLI's help and the README's table are made from it."""

import re
import subprocess
import sys
from pathlib import Path

from tokenq.presets import PRESET_DIR, PRESETS, description, markdown_table

REPO = Path(__file__).resolve().parents[1]


def test_the_readme_table_is_the_generated_one():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"<!-- presets:begin -->\n(.*?)\n<!-- presets:end -->", readme, re.S)
    assert block, "README.md has no <!-- presets:begin --> ... <!-- presets:end --> block"
    assert block.group(1).strip() == markdown_table(), "regenerate it with `python -m tokenq.presets`"


def test_the_table_has_one_row_per_preset_file_with_its_first_line():
    assert (PRESET_DIR / "reverse.yaml").read_text().startswith(f"# {description('reverse')}\n")
    rows = markdown_table().splitlines()[2:]
    assert len(rows) == len(list(PRESET_DIR.glob("*.yaml"))) >= 10
    assert "| `lipogram` | The demonstration on a real instruct model" in rows[PRESETS.index("lipogram")]
    tiny = "Reverse 2 letters a, b in at most 3 steps: 124 states, so exact Q* is computed and checked."
    assert description("tiny") == tiny


def test_the_cli_help_names_every_preset():
    out = subprocess.run([sys.executable, "-m", "tokenq.cli", "train", "--help"], capture_output=True, text=True)
    text = " ".join(out.stdout.split())
    for name in PRESETS:
        assert re.search(rf"[(, ]{re.escape(name)}[,)]", text), name
