"""Checks of the installation itself, run before any command: the standard library only, so that they cost nothing."""

from __future__ import annotations

from pathlib import Path


def check_distributed_is_ours() -> str | None:
    """dask also ships a top-level package named `distributed`; installed beside tokenq it shadows ours. Returns
    the sentence to stop with, or None."""
    import importlib.util

    spec = importlib.util.find_spec("distributed")
    origin = Path(spec.origin).parent if spec and spec.origin else None
    if origin is None or not (origin / "hosts.py").exists() or not (origin / "driver.py").exists():
        return (
            f"the package `distributed` resolves to {origin or 'nothing'}, not to tokenq's own (dask's `distributed` "
            "is probably installed in this environment); install tokenq in an environment without dask"
        )
    return None
