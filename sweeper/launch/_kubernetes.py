"""`sweeper launch k8s`: an Indexed Job of N worker pods on one study, the storage URL from a Secret; optionally a
PostgreSQL StatefulSet and Service for users with no database. Written, never applied: `kubectl apply -f` does."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import yaml

from ..config import ConfigError
from ._worker_command import WorkerOptions

STORAGE_ENV = "SWEEPER_STORAGE_URL"
POSTGRES_SERVICE = "sweeper-postgres"
DEFAULT_SECRET = "sweeper-storage"


@dataclass(frozen=True)
class KubernetesOptions:
    image: str
    workers: int = 1
    gpus_per_worker: int = 1
    secret: str = DEFAULT_SECRET  # keys: `url` (the storage URL) and, with_postgres, `password`
    namespace: str | None = None
    command: tuple[str, ...] = ("sweeper",)  # the image's sweeper entry point
    workdir: str | None = None  # where the study file's relative paths resolve inside the image
    cpu: str = "4"
    memory: str = "16Gi"
    with_postgres: bool = False
    postgres_image: str = "postgres:16"
    postgres_storage: str = "20Gi"
    grace_period_s: int = 120  # SIGTERM to SIGKILL: time to store the running trial as interrupted and queue it again

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"--workers {self.workers}: give 1 or more worker pods")
        if self.gpus_per_worker < 0:
            raise ConfigError(f"--gpus-per-worker {self.gpus_per_worker}: give 0 (CPU workers) or more")
        if not self.image.strip():
            raise ConfigError("--image: give the container image that has sweeper and the study's files")
        for name, value in (("--secret", self.secret), ("--namespace", self.namespace)):
            if value is not None and not _DNS_LABEL.fullmatch(value):
                raise ConfigError(f"{name} {value!r}: Kubernetes names are lower-case letters, digits and '-', "
                                  "at most 63, starting and ending with a letter or digit")


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def resource_name(study_name: str) -> str:
    """`sweeper-<study name>` as a DNS label (Job names become pod labels: at most 63 characters). A name that had
    to change gets 6 hex digits of the original, so that two studies never share a Job."""
    slug = re.sub(r"[^a-z0-9-]+", "-", study_name.lower()).strip("-")
    name = f"sweeper-{slug}".strip("-")
    if slug != study_name or len(name) > 52:
        name = f"{name[:45].rstrip('-')}-{hashlib.sha256(study_name.encode()).hexdigest()[:6]}"
    return name


def kubernetes_manifest(study_file: str, study_name: str, options: KubernetesOptions, worker: WorkerOptions) -> str:
    """The manifest as YAML documents: the worker Job, and with `with_postgres` the database's Service and
    StatefulSet first, so that `kubectl apply -f` creates the database before the workers look for it."""
    name = resource_name(study_name)
    labels = {"app.kubernetes.io/name": "sweeper", "app.kubernetes.io/instance": name}
    documents = []
    if options.with_postgres:
        documents += _postgres(options, labels)
    documents.append(_worker_job(name, study_file, options, worker, labels))
    for document in documents:
        if options.namespace:
            document["metadata"]["namespace"] = options.namespace
    header = (
        f"# sweeper workers of study {study_name}: written by `sweeper launch k8s`; apply with kubectl apply -f.\n"
        f"# The storage URL comes from Secret {options.secret!r} (key `url`); create it first, e.g.\n"
        f"#   kubectl create secret generic {options.secret} --from-literal=url='{_example_url(options)}'"
        + (" --from-literal=password='<the same PASSWORD>'" if options.with_postgres else "")
        + "\n"
    )
    return header + yaml.dump_all(documents, Dumper=_PlainDumper, sort_keys=False)


class _PlainDumper(yaml.SafeDumper):
    """Writes a label set used twice twice, not as a YAML anchor and alias, which readers of a manifest trip on."""

    def ignore_aliases(self, data) -> bool:
        return True


def _example_url(options: KubernetesOptions) -> str:
    if options.with_postgres:
        return f"postgresql://sweeper:PASSWORD@{POSTGRES_SERVICE}:5432/sweeper"
    return "postgresql://USER:PASSWORD@HOST:5432/DATABASE"


def _worker_job(name: str, study_file: str, options: KubernetesOptions, worker: WorkerOptions, labels: dict) -> dict:
    container = {
        "name": "worker",
        "image": options.image,
        "command": [*options.command, "worker", study_file, "--storage-env", STORAGE_ENV, *worker.arguments()],
        "env": [{"name": STORAGE_ENV, "valueFrom": {"secretKeyRef": {"name": options.secret, "key": "url"}}}],
        "resources": {
            "requests": {"cpu": options.cpu, "memory": options.memory},
            "limits": {"memory": options.memory},
        },
    }
    if options.gpus_per_worker:
        container["resources"]["limits"]["nvidia.com/gpu"] = options.gpus_per_worker
    else:
        container["env"].append({"name": "CUDA_VISIBLE_DEVICES", "value": ""})
    if options.workdir:
        container["workingDir"] = options.workdir
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            # one pod per index; a pod that fails (a worker error) is retried for its index only
            "completionMode": "Indexed",
            "completions": options.workers,
            "parallelism": options.workers,
            "backoffLimitPerIndex": 3,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",  # backoffLimitPerIndex needs it; a new pod replaces a failed one
                    # an evicted pod gets SIGTERM: its worker stores the running trial as interrupted, queues it again
                    "terminationGracePeriodSeconds": options.grace_period_s,
                    "containers": [container],
                },
            },
        },
    }


def _postgres(options: KubernetesOptions, labels: dict) -> list[dict]:
    database_labels = {**labels, "app.kubernetes.io/component": "database"}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": POSTGRES_SERVICE, "labels": database_labels},
        "spec": {"selector": database_labels, "ports": [{"name": "postgres", "port": 5432, "targetPort": 5432}]},
    }
    password = {"secretKeyRef": {"name": options.secret, "key": "password"}}
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": POSTGRES_SERVICE, "labels": database_labels},
        "spec": {
            "serviceName": POSTGRES_SERVICE,
            "replicas": 1,
            "selector": {"matchLabels": database_labels},
            "template": {
                "metadata": {"labels": database_labels},
                "spec": {
                    "containers": [{
                        "name": "postgres",
                        "image": options.postgres_image,
                        "env": [
                            {"name": "POSTGRES_USER", "value": "sweeper"},
                            {"name": "POSTGRES_DB", "value": "sweeper"},
                            {"name": "POSTGRES_PASSWORD", "valueFrom": password},
                            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                        ],
                        "ports": [{"name": "postgres", "containerPort": 5432}],
                        "readinessProbe": {"exec": {"command": ["pg_isready", "-U", "sweeper"]}, "periodSeconds": 5},
                        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}],
                    }],
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": options.postgres_storage}},
                },
            }],
        },
    }
    return [service, statefulset]
