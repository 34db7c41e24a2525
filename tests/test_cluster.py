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


FOUR_NODES = """
import json, os, signal, sys, threading, time
from pathlib import Path
from ray.cluster_utils import Cluster
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 3})
for _ in range(3):
    cluster.add_node(num_cpus=3)
cluster.wait_for_nodes()
run = Path(sys.argv[1])

def kill_the_learner():  # after the first checkpoint, while every actor pulls weights after each batch
    while not (run / "checkpoints" / "ckpt_00000100.pt").exists():
        time.sleep(0.05)
    os.kill(json.loads((run / "processes.json").read_text())["learner"], signal.SIGKILL)
    (run.parent / "killed").write_text("yes")

threading.Thread(target=kill_the_learner, daemon=True).start()
from tokenq.cli import main
code = main(["train", "--config", "reverse", "--address", cluster.address, "--run-dir", str(run),
             "actors.num_actors=8", "replay.num_shards=2", "train.total_updates=900", "train.eval_every=100",
             "train.checkpoint_every=100", "train.max_seconds=240"])
cluster.shutdown()  # the driver disconnected when training ended
sys.exit(code)
"""


@pytest.mark.slow
def test_four_node_cluster_survives_its_learners_death_and_learns(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", FOUR_NODES, str(run)], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "killed").exists()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["mode"] == "cluster" and summary["num_actors"] == 8 and summary["num_shards"] == 2
    assert len(summary["nodes"]) >= 3  # rollout actors spread over the raylets
    assert summary["learner_node"] in summary["shard_nodes"]  # shards beside the learner (soft affinity)
    # The learner died while actors pulled: it was replaced from its checkpoint, and no actor saw an error (the
    # weights they were reading belong to the weight store, not to the dead learner).
    assert summary["learner_restarts"] == 1 and summary["actor_restarts"] == 0
    assert summary["learner_updates"] == 900 and summary["resumed_from_updates"] is None
    assert summary["eval"]["success_rate"] >= 0.9


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
