"""optuna-dashboard started by `sweeper dashboard` serves the study and its trials' user attributes over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from _known_study import FAILED_TRIAL, FAILURE_REASON, OVERFIT_TRIAL, write_study_file
from sweeper.cli import main
from sweeper.dashboard import dashboard_url, free_port

STARTUP_TIMEOUT_S = 90


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def dashboard(known_study, tmp_path_factory):
    """`sweeper dashboard` in its own process on a free port, shared by the module's tests (they only read);
    stopped (and waited for) in teardown."""
    study_name, url = known_study
    tmp_path = tmp_path_factory.mktemp("dashboard")
    study_file = write_study_file(tmp_path / "known.yaml", study_name, url)
    port = free_port()
    log_path = tmp_path / "dashboard.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "sweeper.cli", "dashboard", str(study_file), "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"sweeper dashboard exited with {process.returncode}: {log_path.read_text()}")
            try:
                _get(f"{base}/api/studies")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"no answer on {base} after {STARTUP_TIMEOUT_S} s: {log_path.read_text()}")
                time.sleep(0.5)
        yield base, study_name, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_dashboard_serves_the_study_and_trial_user_attributes(dashboard):
    base, study_name, log = dashboard
    studies = _get(f"{base}/api/studies")["study_summaries"]
    study = next(s for s in studies if s["study_name"] == study_name)
    detail = _get(f"{base}/api/studies/{study['study_id']}")
    trials = {trial["number"]: trial for trial in detail["trials"]}
    attrs = {a["key"]: a["value"] for a in trials[OVERFIT_TRIAL]["user_attrs"]}
    assert float(attrs["eval_nll_loss"]) == pytest.approx(float(attrs["train_nll_loss"]) + 0.7, abs=0.05)
    assert "config_hash" in attrs and "training_config" in attrs
    failed = {a["key"]: a["value"] for a in trials[FAILED_TRIAL]["user_attrs"]}
    assert trials[FAILED_TRIAL]["state"] == "Fail" and failed["failure_reason"] == FAILURE_REASON
    # the command printed where to look
    assert dashboard_url("127.0.0.1", int(base.rsplit(":", 1)[1]), study["study_id"]) in log.read_text()


def _listening_addresses(port: int) -> set[str]:
    """IPv4 addresses with a socket listening on `port`, from the kernel's own table (Linux)."""
    table = Path("/proc/net/tcp")
    if not table.exists():
        pytest.skip("needs Linux's /proc/net/tcp to see which address the dashboard listens on")
    addresses = set()
    for line in table.read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, local_port = local.split(":")
        if state == "0A" and int(local_port, 16) == port:  # 0A = LISTEN; the address is little-endian hex
            addresses.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return addresses


def test_dashboard_is_bound_to_localhost_by_default(dashboard):
    base, _, _ = dashboard
    assert _listening_addresses(int(base.rsplit(":", 1)[1])) == {"127.0.0.1"}


def test_busy_port_and_missing_study_are_clear_errors(known_study, tmp_path, capsys):
    study_name, url = known_study
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        study_file = write_study_file(tmp_path / "known.yaml", study_name, url)
        assert main(["dashboard", str(study_file), "--port", str(port)]) == 2
        assert f"--port {port}: something already listens" in capsys.readouterr().err
    missing = write_study_file(tmp_path / "missing.yaml", "missing", url)
    assert main(["dashboard", str(missing), "--port", "0"]) == 2
    assert "no study 'missing'" in capsys.readouterr().err


def test_hosts_other_than_ipv4_loopback_are_checked_not_crashed_on(known_study, tmp_path, capsys, monkeypatch):
    import optuna_dashboard

    study_name, url = known_study
    study_file = write_study_file(tmp_path / "known.yaml", study_name, url)
    assert main(["dashboard", str(study_file), "--host", "no-such-host.invalid"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --host 'no-such-host.invalid' is not an address") and "Traceback" not in err
    served = []
    # the server itself is tested above; here only what the command hands it
    monkeypatch.setattr(optuna_dashboard, "run_server", lambda storage, host, port: served.append((host, port)))
    assert main(["dashboard", str(study_file), "--host", "::1", "--port", "0"]) == 0  # IPv6 loopback: was gaierror
    out, err = capsys.readouterr()
    assert served[0][0] == "::1" and f"http://[::1]:{served[0][1]}/dashboard/studies/" in out and not err
    assert main(["dashboard", str(study_file), "--host", "0.0.0.0", "--port", "0"]) == 0
    out, err = capsys.readouterr()
    assert "warning: --host 0.0.0.0 lets other machines reach the dashboard" in err
    assert "http://127.0.0.1" not in out  # the URL names this machine, not a loopback address others cannot use
