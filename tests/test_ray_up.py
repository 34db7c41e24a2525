"""`ray up`, `ray submit` and `ray down` of cluster/local.yaml against this machine over SSH on loopback.

The set-up starts an sshd of its own on 127.0.0.1:22 with keys it makes (.ci/run installs openssh-server and
rsync). `ray up` runs `ray stop` on the head, which is this machine: every Ray process here ends, so this test is
ordered last (marker `kills_ray`) and first disconnects the session's own Ray."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _close_ray_ssh_multiplexers() -> None:
    """Ray's commands leave ssh ControlMaster processes ("ssh: /tmp/ray_ssh_...") holding sessions open."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(b"ssh: /tmp/ray_ssh_"):
                os.kill(int(proc.name), signal.SIGTERM)
        except OSError:
            pass


def _run(args, **kw):
    env = dict(os.environ, RAY_AUTH_MODE="token")
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)


@pytest.mark.kills_ray
@pytest.mark.slow
def test_ray_up_submit_down_over_ssh_on_loopback(tmp_path):
    if not (Path(SSHD).exists() and shutil.which("rsync")):
        pytest.skip("needs sshd and rsync (.ci/run installs openssh-server and rsync)")
    if not _port_free(22):
        pytest.skip("127.0.0.1:22 is taken; this test runs its own sshd there")
    import ray

    ray.shutdown()  # `ray up` stops every Ray process on this machine, the session's included

    ssh = tmp_path / "ssh"
    ssh.mkdir()
    for name in ("key", "hostkey"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / name)], check=True)
    shutil.copy(ssh / "key.pub", ssh / "authorized_keys")
    (ssh / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort 22\nHostKey {ssh / 'hostkey'}\nAuthorizedKeysFile {ssh / 'authorized_keys'}\n"
        f"PermitRootLogin prohibit-password\nPasswordAuthentication no\nStrictModes no\nUsePAM no\n"
        f"PidFile {ssh / 'sshd.pid'}\n"
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    subprocess.run([SSHD, "-f", str(ssh / "sshd_config"), "-E", str(ssh / "sshd.log")], check=True)

    # cluster/local.yaml, pointed at this machine: loopback, root, the key made above, the venv already here.
    config = yaml.safe_load((REPO / "cluster" / "local.yaml").read_text())
    config["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    config["auth"] = {"ssh_user": "root", "ssh_private_key": str(ssh / "key")}
    config["max_workers"] = 0
    config["file_mounts"] = {"~/tokenq-ci": str(REPO)}
    marker = "TOKENQ_CI_PATH"
    config["setup_commands"] = [f"grep -q {marker} ~/.bashrc || echo 'export PATH={BIN}:$PATH {marker}=1' >> ~/.bashrc"]
    config["head_start_ray_commands"] = [
        cmd.replace(". ~/tokenq-venv/bin/activate && ", "").replace("--head", "--head --node-ip-address=127.0.0.1")
        for cmd in config["head_start_ray_commands"]
    ]
    cluster_yaml = tmp_path / "local-ci.yaml"
    cluster_yaml.write_text(yaml.safe_dump(config))
    bashrc = Path.home() / ".bashrc"
    saved = bashrc.read_text() if bashrc.exists() else None
    run_dir = tmp_path / "run"
    try:
        up = _run([str(BIN / "ray"), "up", "-y", str(cluster_yaml)], timeout=300)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        # The README's command: the entry script joins the running cluster.
        submit = _run(
            [
                str(BIN / "ray"),
                "submit",
                str(cluster_yaml),
                "cluster/train_job.py",
                "--",
                "--config",
                "reverse",
                "--run-dir",
                str(run_dir),
                "train.total_updates=300",
                "actors.num_actors=1",  # the head has 2 CPUs: one actor, one learner
            ],
            timeout=300,
        )
        assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-3000:]
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["mode"] == "cluster" and summary["learner_updates"] == 300
    finally:
        down = _run([str(BIN / "ray"), "down", "-y", str(cluster_yaml)], timeout=300)
        if saved is None:
            bashrc.unlink(missing_ok=True)
        else:
            bashrc.write_text(saved)
        pid_file = ssh / "sshd.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        _close_ray_ssh_multiplexers()
        time.sleep(1)
    assert down.returncode == 0, down.stdout[-2000:] + down.stderr[-2000:]
