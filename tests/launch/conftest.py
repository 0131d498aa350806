"""A real single-node SLURM cluster (Debian's slurm-wlm: munged, slurmctld, slurmd) started for the session in a
private folder, on its own ports, as root. Skips with the reason where it cannot run; CI sets SWEEPER_REQUIRE_SLURM=1
so that a missing SLURM fails instead of skipping silently."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")


def _unavailable() -> str | None:
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)} not found; Debian: apt-get install slurm-wlm)"
    if os.geteuid() != 0:
        return "slurmd must run as root to start jobs, and these tests run as another user"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _slurm_conf(folder: Path, host: str) -> str:
    return f"""ClusterName=sweepertest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={folder / 'munge' / 'munge.sock'}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={folder / 'state'}
SlurmdSpoolDir={folder / 'spool'}
SlurmctldPidFile={folder / 'slurmctld.pid'}
SlurmdPidFile={folder / 'slurmd.pid'}
SlurmctldLogFile={folder / 'slurmctld.log'}
SlurmdLogFile={folder / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=30
NodeName={host} NodeAddr=127.0.0.1 CPUs=4 RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """The environment (SLURM_CONF) under which sbatch, squeue and scancel talk to the session's cluster."""
    reason = _unavailable()
    if reason is not None:
        if os.environ.get("SWEEPER_REQUIRE_SLURM") == "1":
            pytest.fail(f"SLURM is required (SWEEPER_REQUIRE_SLURM=1) but cannot run: {reason}")
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("slurm")
    for name in ("munge", "state", "spool"):
        (folder / name).mkdir()
    (folder / "munge").chmod(0o711)
    key = folder / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    socket_path = folder / "munge" / "munge.sock"
    subprocess.run(
        ["munged", "--force", f"--socket={socket_path}", f"--key-file={key}", f"--log-file={folder / 'munged.log'}",
         f"--pid-file={folder / 'munge' / 'munged.pid'}", f"--seed-file={folder / 'munge' / 'seed'}"],
        check=True,
    )
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True).stdout.strip()
    conf = folder / "slurm.conf"
    conf.write_text(_slurm_conf(folder, host))
    environment = {**os.environ, "SLURM_CONF": str(conf)}
    subprocess.run(["slurmctld", "-f", str(conf)], check=True, env=environment)
    subprocess.run(["slurmd", "-f", str(conf)], check=True, env=environment)
    try:
        deadline = time.monotonic() + 60
        state = ""
        while state != "idle":  # the node registers with the controller
            if time.monotonic() > deadline:
                logs = "\n".join((folder / f"{name}.log").read_text()[-1500:] for name in ("slurmctld", "slurmd")
                                 if (folder / f"{name}.log").exists())
                pytest.fail(f"the SLURM node never became idle (state {state!r}):\n{logs}")
            time.sleep(0.5)
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                                   env=environment).stdout.strip()
        yield {"SLURM_CONF": str(conf)}
    finally:
        subprocess.run(["scancel", "--full", "--user", "root"], env=environment, capture_output=True)
        for pid_file in (folder / "slurmd.pid", folder / "slurmctld.pid"):
            if pid_file.exists():
                subprocess.run(["kill", pid_file.read_text().strip()], capture_output=True)
        subprocess.run(["munged", f"--socket={socket_path}", "--stop"], capture_output=True)
