"""`ray up`, `ray submit` and `ray down` of cluster/local.yaml against this machine over SSH on loopback.

The set-up starts an sshd of its own on a free unprivileged port of 127.0.0.1, with keys it makes (.ci/run installs
openssh-server and rsync), and gives the launcher and the "node" each a HOME of its own under tmp_path: the node runs
the YAML's own setup command (cluster/common-setup.sh), which installs tokenq into ~/tokenq-venv there, so nothing
in the real home changes. `ray up` runs `ray stop` on the head, which is this machine: every Ray process here ends,
so this test is ordered last (marker `kills_ray`) and first disconnects the session's own Ray."""

import getpass
import json
import os
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
BIN = Path(sys.executable).parent
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH = shutil.which("ssh") or "/usr/bin/ssh"
CLUSTER = "tokenq-ci"


def _free_port() -> int:
    """A port the kernel has just handed out (its ephemeral range starts well above 20000 on Linux)."""
    for _ in range(20):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 20000:
            return port
    raise RuntimeError("no free port >= 20000 on 127.0.0.1")


def _start_sshd(ssh_dir: Path, home: Path, port: int, node_env: dict) -> Path:
    """An sshd that lets this user in with a key it makes in ssh_dir and gives its sessions `home` as HOME.

    SetEnv overrides what sshd sets itself (HOME from the password database), so commands on the "node" find
    ~/tokenq-src, ~/tokenq-venv and ~/.ray/auth_token under tmp_path. PATH is not worth setting: the login shell Ray
    opens reads /etc/profile, which replaces it on Debian and Ubuntu; common-setup.sh activates the venv from
    ~/.bashrc, as on a real node."""
    for name in ("client_key", "host_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh_dir / name)], check=True)
    shutil.copy(ssh_dir / "client_key.pub", ssh_dir / "authorized_keys")
    set_env = " ".join(f'"{k}={v}"' for k, v in {"HOME": home, **node_env}.items())
    (ssh_dir / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {ssh_dir / 'host_key'}\n"
        f"AuthorizedKeysFile {ssh_dir / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        f"PasswordAuthentication no\nStrictModes no\nUsePAM no\nPidFile {ssh_dir / 'sshd.pid'}\nSetEnv {set_env}\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # its privilege separation directory
    subprocess.run([SSHD, "-f", str(ssh_dir / "sshd_config"), "-E", str(ssh_dir / "sshd.log")], check=True)
    pid_file = ssh_dir / "sshd.pid"
    for _ in range(50):  # the daemon writes it after forking
        if pid_file.exists() and pid_file.read_text().strip():
            return pid_file
        time.sleep(0.1)
    raise RuntimeError("sshd wrote no PidFile: " + (ssh_dir / "sshd.log").read_text())


def _launcher_ssh(home: Path, port: int, key: Path, control_dir: Path) -> Path:
    """The launcher's ssh settings in HOME/.ssh/config, and an `ssh` that reads them.

    Ray's launcher has no port setting (auth takes a user, a key and a ProxyCommand) and runs `ssh` by name, also
    as rsync's remote shell. OpenSSH reads ~/.ssh/config from the password database's home, not from $HOME, so
    an `ssh` first on the launcher's PATH names the file. It also puts the ControlMaster sockets in a folder of
    this test (an option given first wins over Ray's own ControlPath in /tmp/ray_ssh_*), so the test can close
    exactly the masters it made."""
    (home / ".ssh").mkdir(mode=0o700)
    config = home / ".ssh" / "config"
    config.write_text(
        f"Host 127.0.0.1\n  Port {port}\n  IdentityFile {key}\n  StrictHostKeyChecking no\n"
        f"  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
    )
    wrapper = home / "bin" / "ssh"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {SSH} -F {config} -o "ControlPath={control_dir}/%C" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper.parent


def _close_control_masters(control_dir: Path) -> None:
    """Ray's commands leave ssh ControlMaster processes (ControlPersist) holding sessions open: ask each to exit."""
    for sock in control_dir.iterdir():
        subprocess.run([SSH, "-o", f"ControlPath={sock}", "-O", "exit", "127.0.0.1"], capture_output=True, timeout=30)


def _stop_sshd(pid_file: Path) -> None:
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


@pytest.mark.kills_ray
@pytest.mark.slow
def test_ray_up_submit_down_over_ssh_on_loopback(tmp_path):
    if not (Path(SSHD).exists() and shutil.which("rsync")):
        pytest.skip("needs sshd and rsync (.ci/run installs openssh-server and rsync)")
    import ray
    import torch

    ray.shutdown()  # `ray up` stops every Ray process on this machine, the session's included

    launcher_home, node_home, ssh_dir, launcher_tmp = (tmp_path / d for d in ("launcher", "node", "ssh", "tmp"))
    for d in (launcher_home, node_home, ssh_dir, launcher_tmp):
        d.mkdir()
    (node_home / ".bashrc").touch()  # a node's home has one: Ray sources it, common-setup.sh appends to it
    # The node's pip takes packages from where this machine's pip takes them (mirrors, local wheels): the PIP_*
    # variables go to the sshd's sessions, the per-user configuration files to the node's HOME.
    for rel in (".config/pip/pip.conf", ".pip/pip.conf"):
        if (Path.home() / rel).is_file():
            (node_home / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path.home() / rel, node_home / rel)
    node_env = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    # common-setup.sh's choice of PyTorch: the build this session runs, not the newest from the CPU index.
    node_env["TOKENQ_TORCH"] = f"torch=={torch.__version__}"
    # Short, because a socket's path must fit in 108 bytes and ssh adds 17 to its %C while creating it.
    control_dir = Path(tempfile.mkdtemp(prefix="tokenq-ssh-"))
    port = _free_port()
    env = dict(os.environ, HOME=str(launcher_home), TMPDIR=str(launcher_tmp), RAY_AUTH_MODE="token")
    env["PATH"] = f"{_launcher_ssh(launcher_home, port, ssh_dir / 'client_key', control_dir)}:{env['PATH']}"
    env.pop("RAY_ADDRESS", None)

    def ray_cli(*args):
        cmd = [str(BIN / "ray"), *args]
        return subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300
        )

    # cluster/local.yaml with its own file mounts and setup commands, pointed at this machine: loopback, this
    # user, the key _start_sshd makes.
    config = yaml.safe_load((REPO / "cluster" / "local.yaml").read_text())
    config["cluster_name"] = CLUSTER
    config["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    config["auth"] = {"ssh_user": getpass.getuser(), "ssh_private_key": str(ssh_dir / "client_key")}
    config["max_workers"] = 0
    config["head_start_ray_commands"] = [
        cmd.replace("--head", "--head --node-ip-address=127.0.0.1") for cmd in config["head_start_ray_commands"]
    ]
    cluster_yaml = tmp_path / "local-ci.yaml"
    cluster_yaml.write_text(yaml.safe_dump(config))
    run_dir = tmp_path / "run"
    pid_file = _start_sshd(ssh_dir, node_home, port, node_env)  # stopped by the finally below
    try:
        # The YAML's first step: the cluster's token, which its file_mounts copy to the node.
        token = ray_cli("get-auth-token", "--generate")
        assert token.returncode == 0, token.stderr
        up = ray_cli("up", "-y", str(cluster_yaml))
        assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-3000:]
        assert (node_home / "tokenq-venv" / "bin" / "tokenq").exists()  # common-setup.sh's venv
        # The README's command: the entry script joins the running cluster.
        submit = ray_cli(
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
        )
        assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-3000:]
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["mode"] == "cluster" and summary["learner_updates"] == 300
    finally:
        down = ray_cli("down", "-y", str(cluster_yaml))
        _close_control_masters(control_dir)
        _stop_sshd(pid_file)
        shutil.rmtree(control_dir, ignore_errors=True)
        # What is ours by name and large or outside tmp_path: the head's cluster state (Ray's temp dir on the node
        # is /tmp/ray, sshd passes no TMPDIR), the venv (1.5 GB) and pip's cache.
        for suffix in (".state", ".lock"):
            Path("/tmp/ray", f"cluster-{CLUSTER}{suffix}").unlink(missing_ok=True)
        for big in ("tokenq-venv", ".cache"):
            shutil.rmtree(node_home / big, ignore_errors=True)
    assert down.returncode == 0, down.stdout[-2000:] + down.stderr[-2000:]
    # `ray down` only warns when its `ray stop` fails (e.g. no `ray` on the node's PATH): the head's GCS must be gone.
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", 6379)) != 0, down.stdout[-2000:] + down.stderr[-2000:]
