"""`sweeper launch k8s`: the manifest passes the Kubernetes schema (kubernetes-validate, strict: no unknown field)
and says what a user relies on: N indexed worker pods, the URL from a Secret, GPUs, a grace period to re-queue."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from sweeper.cli import main
from sweeper.config import ConfigError
from sweeper.launch import KubernetesOptions
from sweeper.launch._kubernetes import resource_name

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.33"  # backoffLimitPerIndex is GA from 1.33 (beta, on by default, since 1.29)


def _manifest(tmp_path, *extra: str) -> list[dict]:
    output = tmp_path / "sweeper.yaml"
    code = main(["launch", "k8s", str(REPO_ROOT / "studies" / "default.yaml"), "-o", str(output), *extra])
    assert code == 0
    return list(yaml.safe_load_all(output.read_text()))


@pytest.mark.parametrize(
    "extra",
    [[], ["--gpus-per-worker", "0"], ["--with-postgres", "--namespace", "sweeps"], ["--workers", "8", "--workdir", "/w"]],
)
def test_every_manifest_passes_the_kubernetes_schema(tmp_path, extra):
    documents = _manifest(tmp_path, "--image", "registry.example/sweeper:1", *extra)
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_refuses_what_kubernetes_would(tmp_path):
    """The validator used above is not a formality: an unknown field or a wrong type fails it."""
    (job,) = _manifest(tmp_path, "--image", "registry.example/sweeper:1")
    job["spec"]["template"]["spec"]["containers"][0]["gpus"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    (job,) = _manifest(tmp_path, "--image", "registry.example/sweeper:1")
    job["spec"]["parallelism"] = "four"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


def test_the_job_runs_n_indexed_workers_on_the_secret_url_with_a_gpu_each(tmp_path):
    (job,) = _manifest(tmp_path, "--image", "registry.example/sweeper:1", "--workers", "4", "--n-trials", "500",
                       "--grace-period", "90")
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 4, 4)
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["terminationGracePeriodSeconds"] >= 60
    (container,) = pod["containers"]
    assert container["image"] == "registry.example/sweeper:1"
    command = container["command"]
    assert command[:2] == ["sweeper", "worker"] and command[command.index("--storage-env") + 1] == "SWEEPER_STORAGE_URL"
    assert command[command.index("--n-trials") + 1] == "500" and command[command.index("--grace-period") + 1] == "90"
    (url,) = [variable for variable in container["env"] if variable["name"] == "SWEEPER_STORAGE_URL"]
    assert url["valueFrom"]["secretKeyRef"] == {"name": "sweeper-storage", "key": "url"}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_cpu_workers_ask_for_no_gpu_and_see_none(tmp_path):
    (job,) = _manifest(tmp_path, "--image", "i:1", "--gpus-per-worker", "0")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert {"name": "CUDA_VISIBLE_DEVICES", "value": ""} in container["env"]


def test_with_postgres_the_database_comes_first_and_takes_its_password_from_the_secret(tmp_path):
    service, statefulset, job = _manifest(tmp_path, "--image", "i:1", "--with-postgres", "--namespace", "sweeps")
    assert [d["kind"] for d in (service, statefulset, job)] == ["Service", "StatefulSet", "Job"]
    assert {d["metadata"]["namespace"] for d in (service, statefulset, job)} == {"sweeps"}
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    (password,) = [v for v in container["env"] if v["name"] == "POSTGRES_PASSWORD"]
    assert password["valueFrom"]["secretKeyRef"] == {"name": "sweeper-storage", "key": "password"}
    assert service["spec"]["selector"] == statefulset["spec"]["template"]["metadata"]["labels"]
    text = (tmp_path / "sweeper.yaml").read_text()
    assert "postgresql://sweeper:PASSWORD@sweeper-postgres:5432/sweeper" in text  # the Secret to create, a placeholder
    assert "&id" not in text and "*id" not in text  # no YAML aliases


def test_study_names_become_valid_distinct_resource_names():
    assert resource_name("orpo-tiny-default") == "sweeper-orpo-tiny-default"
    odd = [resource_name(name) for name in ("ORPO Study_1", "orpo-study-1", "x" * 100, "x" * 101)]
    assert len(set(odd)) == 4
    for name in odd:
        assert len(name) <= 52 and name.replace("-", "").isalnum() and name == name.lower()


@pytest.mark.parametrize(
    ("options", "message"),
    [({"workers": 0}, "--workers 0"), ({"secret": "My_Secret"}, "--secret 'My_Secret'"), ({"image": " "}, "--image"),
     ({"gpus_per_worker": -1}, "--gpus-per-worker -1")],
)
def test_bad_options_name_the_flag(options, message):
    with pytest.raises(ConfigError, match=message):
        KubernetesOptions(**{"image": "i:1", **options})
