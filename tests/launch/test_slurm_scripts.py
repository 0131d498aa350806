"""`sweeper launch slurm --dry-run`: the job scripts it writes, and what it refuses. No SLURM needed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sweeper.cli import main
from sweeper.config import ConfigError
from sweeper.launch import SlurmOptions

SECRET = "dry-run-s3cret"
URL = f"postgresql://sweeper:{SECRET}@db.example:5432/sweeps"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _launch(tmp_path, *extra: str) -> int:
    return main(["launch", "slurm", "studies/default.yaml", "--storage", URL, "-o", str(tmp_path / "jobs"),
                 "--dry-run", *extra])


@pytest.fixture(autouse=True)
def _in_repository(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)


def test_one_array_task_per_node_one_worker_per_gpu_and_the_password_only_in_a_private_file(tmp_path, capsys):
    code = _launch(tmp_path, "--nodes", "3", "--gpus-per-node", "4", "--partition", "gpu", "--time", "12:00:00",
                   "--setup", "module load cuda", "--n-trials", "200")
    out = capsys.readouterr().out
    assert code == 0 and SECRET not in out
    jobs = tmp_path / "jobs"
    worker = (jobs / "worker.sbatch").read_text()
    for line in ("#SBATCH --array=0-2", "#SBATCH --gpus-per-node=4", "#SBATCH --partition=gpu",
                 "#SBATCH --time=12:00:00", "#SBATCH --requeue", "#SBATCH --cpus-per-task=16", "module load cuda"):
        assert line in worker
    assert f"--storage-file {jobs / 'storage-url'}" in worker and "--n-trials 200" in worker
    assert "gpus=($(seq 0 3))" in worker  # where SLURM sets no CUDA_VISIBLE_DEVICES
    report = (jobs / "report.sbatch").read_text()
    assert f"-o {jobs / 'report.html'}" in report and f"-o {jobs / 'export'}" in report
    for script in (worker, report):
        assert SECRET not in script and "db.example" not in script
        subprocess.run(["bash", "-n"], input=script, text=True, check=True)  # valid shell
    storage_file = jobs / "storage-url"
    assert storage_file.read_text().strip() == URL.replace("postgresql:", "postgresql+psycopg2:")
    assert storage_file.stat().st_mode & 0o777 == 0o600 and jobs.stat().st_mode & 0o777 == 0o700
    assert f"sbatch --parsable {jobs / 'worker.sbatch'}" in out


def test_cpu_workers_ask_for_no_gpu(tmp_path):
    assert _launch(tmp_path) == 0
    worker = (tmp_path / "jobs" / "worker.sbatch").read_text()
    assert "--gpus" not in worker.replace("gpus=", "") and "#SBATCH --array=0-0" in worker


def test_the_worker_script_starts_one_worker_per_gpu_it_was_given(tmp_path):
    """The script itself, run by bash with SLURM's variables set, and a stand-in Python that records its calls."""
    assert _launch(tmp_path, "--gpus-per-node", "2", "--python", str(tmp_path / "python")) == 0
    calls = tmp_path / "calls"
    (tmp_path / "python").write_text(f'#!/bin/bash\necho "$CUDA_VISIBLE_DEVICES $*" >> {calls}\n')
    (tmp_path / "python").chmod(0o755)
    environment = {"PATH": "/usr/bin:/bin", "SLURM_ARRAY_JOB_ID": "7", "SLURM_ARRAY_TASK_ID": "1",
                   "CUDA_VISIBLE_DEVICES": "2,5"}
    done = subprocess.run(["bash", str(tmp_path / "jobs" / "worker.sbatch")], env=environment)
    assert done.returncode == 0
    lines = sorted(calls.read_text().splitlines())
    assert [line.split()[0] for line in lines] == ["2", "5"]
    assert all(" -m sweeper.cli worker " in line for line in lines)
    assert sorted(p.name for p in (tmp_path / "jobs" / "logs").iterdir()) == ["worker-7_1-0.log", "worker-7_1-1.log"]


def test_an_existing_storage_file_is_used_as_it_is_and_nothing_is_copied(tmp_path):
    url_file = tmp_path / "my-url"
    url_file.write_text(URL)
    url_file.chmod(0o600)
    code = main(["launch", "slurm", "studies/default.yaml", "--storage-file", str(url_file), "-o",
                 str(tmp_path / "jobs"), "--dry-run"])
    assert code == 0 and not (tmp_path / "jobs" / "storage-url").exists()
    assert f"--storage-file {url_file}" in (tmp_path / "jobs" / "worker.sbatch").read_text()


def test_sqlite_is_refused_for_several_nodes(tmp_path, capsys):
    code = main(["launch", "slurm", "studies/default.yaml", "--storage", f"sqlite:///{tmp_path / 's.db'}",
                 "--nodes", "2", "-o", str(tmp_path / "jobs"), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and "SQLite file, which 2 nodes cannot share" in err and "--nodes 1" in err
    assert not (tmp_path / "jobs").exists()


def test_without_sbatch_the_error_says_where_to_run_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch on it
    code = main(["launch", "slurm", "studies/default.yaml", "--storage", f"sqlite:///{tmp_path / 's.db'}",
                 "-o", str(tmp_path / "jobs")])
    err = capsys.readouterr().err
    assert code == 2 and "sbatch not found: run this on a SLURM login node" in err


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("nodes", 0, "--nodes 0"), ("gpus_per_node", -1, "--gpus-per-node -1"), ("cpus_per_worker", 0, "--cpus-per"),
     ("sbatch_options", ("qos=high",), "--sbatch-option 'qos=high'")],
)
def test_bad_options_name_the_flag(field, value, message):
    with pytest.raises(ConfigError, match=message):
        SlurmOptions(**{field: value})
