"""The presets: YAML files beside this module, in the format of a user's config file. This module is the one list of
them: their names, and each one's description (its file's first line), for the CLI's help and the README's table
(`python -m tokenq.presets` prints it). The standard library only, so that `tokenq --help` stays instant."""

from __future__ import annotations

from pathlib import Path

PRESET_DIR = Path(__file__).resolve().parent
PRESETS = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def description(name: str) -> str:
    """The preset's first line, less its comment sign."""
    first = (PRESET_DIR / f"{name}.yaml").read_text().splitlines()[0]
    return first.removeprefix("#").strip()


def markdown_table() -> str:
    """The README's preset table."""
    rows = ["| preset | what it trains |", "| --- | --- |"]
    rows += [f"| `{name}` | {description(name)} |" for name in PRESETS]
    return "\n".join(rows)
