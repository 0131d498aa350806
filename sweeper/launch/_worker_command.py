"""What every scheduled worker runs: `sweeper worker STUDY` with the sweep's settings, the URL given by reference."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WorkerOptions:
    """The `sweeper worker` settings a launch passes on; None leaves the study file's (or the default) value."""

    n_trials: int | None = None
    timeout_s: float | None = None
    heartbeat_interval_s: int | None = None
    grace_period_s: int | None = None
    allow_changed_inputs: bool = False

    def arguments(self) -> list[str]:
        arguments = ["--no-progress"]
        for flag, value in (
            ("--n-trials", self.n_trials),
            ("--timeout", self.timeout_s),
            ("--heartbeat-interval", self.heartbeat_interval_s),
            ("--grace-period", self.grace_period_s),
        ):
            if value is not None:
                arguments += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
        if self.allow_changed_inputs:
            arguments.append("--allow-changed-inputs")
        return arguments


def write_storage_file(folder: Path, url: str) -> Path:
    """The storage URL in `folder`/storage-url, readable by the user only (folder 700, file 600): jobs read it from
    there, so the password appears in no script, job command line or log."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    path = folder / "storage-url"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(url + "\n")
    path.chmod(0o600)  # a file that existed keeps its old mode through os.open
    return path
