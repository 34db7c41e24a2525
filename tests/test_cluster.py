"""Cluster jobs with real Ray processes on this machine: a multi-node cluster, a Ray Jobs submission to a
`ray start --head` cluster on loopback, and the cluster-launcher YAMLs against Ray's own schema.

Each cluster here is its own set of processes (own process group, own temp dir), torn down by the test, so the
session's Ray instance is untouched (no `ray stop`, which would end every Ray process on the machine)."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ, RAY_AUTH_MODE="token", PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    return env


def test_cluster_yamls_validate_against_rays_schema():
    import jsonschema
    import ray

    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    launchers = sorted(p for p in (REPO / "cluster").glob("*.yaml") if p.name != "runtime_env.yaml")
    assert {p.name for p in launchers} == {"local.yaml", "aws.yaml", "gcp.yaml"}
    for path in launchers:
        config = yaml.safe_load(path.read_text())
        jsonschema.validate(config, schema)
        start = " ".join(config["head_start_ray_commands"])
        assert "--dashboard-host=127.0.0.1" in start and "RAY_AUTH_MODE=token" in start, path.name
        assert "RAY_AUTH_MODE=disabled" not in path.read_text()
    runtime_env = yaml.safe_load((REPO / "cluster" / "runtime_env.yaml").read_text())
    assert set(runtime_env) <= {"excludes", "env_vars", "pip", "py_modules", "working_dir"}
    assert runtime_env["env_vars"]["RAY_AUTH_MODE"] == "token"


MULTI_NODE = """
import json, sys
from ray.cluster_utils import Cluster
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
cluster.add_node(num_cpus=2)
cluster.wait_for_nodes()
from tokenq.cli import main
code = main(["train", "--config", "reverse", "--address", cluster.address, "--run-dir", sys.argv[1],
             "actors.num_actors=3", "train.total_updates=1200", "train.eval_every=100"])
cluster.shutdown()  # the driver disconnected when training ended
sys.exit(code)
"""


@pytest.mark.slow
def test_multi_node_cluster_spreads_actors_and_learns(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", MULTI_NODE, str(run)], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["mode"] == "cluster"
    assert len(summary["nodes"]) >= 2  # rollout actors ran on both raylets
    assert summary["shard_nodes"] == [summary["learner_node"]]  # shards beside the learner
    assert summary["eval"]["success_rate"] >= 0.95


@pytest.mark.slow
def test_ray_job_submit_to_a_head_on_loopback(tmp_path):
    gcs_port, dash_port = _free_port(), _free_port()
    temp_dir = tempfile.mkdtemp(prefix="tq", dir="/tmp")  # short: Ray's socket paths live under it
    head = subprocess.Popen(
        [
            RAY,
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={gcs_port}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dash_port}",
            "--include-dashboard=true",
            "--num-cpus=4",
            f"--temp-dir={temp_dir}",
        ],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        address = f"http://127.0.0.1:{dash_port}"
        deadline = time.time() + 90
        while (
            subprocess.run([RAY, "job", "list", "--address", address], env=_env(), capture_output=True).returncode != 0
        ):
            assert time.time() < deadline, "the Ray head did not come up"
            time.sleep(2)
        run = tmp_path / "job-run"
        # The README's command, with a short budget.
        submit = subprocess.run(
            [
                RAY,
                "job",
                "submit",
                "--address",
                address,
                "--working-dir",
                ".",
                "--runtime-env",
                "cluster/runtime_env.yaml",
                "--",
                "python",
                "-m",
                "tokenq.cli",
                "train",
                "--config",
                "reverse",
                "--run-dir",
                str(run),
                "train.total_updates=400",
            ],
            cwd=REPO,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert submit.returncode == 0, submit.stdout[-2000:] + submit.stderr[-2000:]
        job_id = next(
            w.strip("'")
            for line in submit.stdout.splitlines()
            if "succeeded" in line
            for w in line.split()
            if w.strip("'").startswith("raysubmit_")
        )
        status = subprocess.run(
            [RAY, "job", "status", "--address", address, job_id], env=_env(), capture_output=True, text=True
        )
        assert f"Job '{job_id}' succeeded" in re.sub(r"\x1b\[[0-9;]*m", "", status.stdout + status.stderr)
        summary = json.loads((run / "summary.json").read_text())
        assert summary["mode"] == "cluster" and summary["learner_updates"] == 400
    finally:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)
