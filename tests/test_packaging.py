from pathlib import Path

import pytest

import actors
import distributed
import learner
import replay
import tokenq

REPO = Path(__file__).resolve().parents[1]


def test_top_level_packages_resolve_to_this_repository():
    # dask ships a top-level `distributed` too; ours must win.
    for module in (tokenq, actors, replay, learner, distributed):
        assert Path(module.__file__).resolve().parent.parent == REPO
    from tokenq import cli
    from tokenq.install import check_distributed_is_ours

    assert callable(cli.main) and check_distributed_is_ours() is None


def test_a_shadowing_distributed_package_stops_tokenq_with_one_sentence(tmp_path):
    import os
    import subprocess

    from procs import cli

    fake = tmp_path / "site" / "distributed"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('"""Not ours: stands in for dask\'s `distributed`."""\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    proc = subprocess.run(cli("config", "reverse"), capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"the package `distributed` resolves to {fake}, not to tokenq's own" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_every_file_a_preset_names_is_found_from_any_directory(tmp_path):
    import json
    import subprocess
    import sys

    from tokenq.config import FILE_KEYS, PRESETS

    probe = (
        "import json, sys; from tokenq.config import load_config; "
        "cfg = load_config(sys.argv[1], ['init.from_hf=model-dir']).to_dict(); "
        f"print(json.dumps({{k: cfg[k.split('.')[0]][k.split('.')[1]] for k in {list(FILE_KEYS)!r}}}))"
    )
    named = 0
    for name in PRESETS:
        out = subprocess.run([sys.executable, "-c", probe, name], capture_output=True, text=True, cwd=tmp_path)
        assert out.returncode == 0, f"{name}: {out.stderr}"
        for key, value in json.loads(out.stdout).items():
            if value:
                named += 1
                assert Path(value).is_file(), f"{name}: {key}={value} does not exist when run from {tmp_path}"
    assert named == 2  # lipogram's training and held-out topics


@pytest.mark.slow
def test_the_wheel_holds_exactly_the_project_and_its_command_runs_outside_the_repository(tmp_path):
    import subprocess
    import sys
    import zipfile

    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("tokenq-*.whl")
    names = {n for n in zipfile.ZipFile(wheel).namelist() if ".dist-info/" not in n}
    packages = ["tokenq", "actors", "replay", "learner", "distributed"]
    expected = {
        str(p.relative_to(REPO))
        for package in packages
        for p in (REPO / package).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    expected |= {str(p.relative_to(REPO)) for p in (REPO / "tokenq" / "presets").glob("*.yaml")}
    expected |= {"tokenq/presets/topics/train.txt", "tokenq/presets/topics/eval.txt"}  # the lipogram's prompts
    assert names == expected
    entry = zipfile.ZipFile(wheel).read(
        next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("entry_points.txt"))
    )
    assert "tokenq = tokenq.cli:main" in entry.decode()

    # A fresh venv with the wheel alone (no dependencies): `tokenq --help` answers, and nothing comes from the checkout.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([venv / "bin" / "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([venv / "bin" / "tokenq", "--help"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("usage: tokenq"), out.stderr
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import tokenq, distributed; print(tokenq.__file__, distributed.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert str(REPO) not in where and where.count(str(venv)) == 2
