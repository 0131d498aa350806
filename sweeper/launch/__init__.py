"""Launch: workers of one study started by a scheduler. `slurm_launch` writes (and submits) a SLURM job array
of workers and a closing report job; `kubernetes_manifest` writes an Indexed Job. Both keep the storage password
out of what they write: it travels in a file only the user can read (SLURM) or a Secret (Kubernetes)."""

from ._kubernetes import KubernetesOptions, kubernetes_manifest
from ._slurm import SlurmOptions, SlurmLaunch, slurm_launch
from ._worker_command import WorkerOptions, write_storage_file

__all__ = [
    "KubernetesOptions",
    "SlurmLaunch",
    "SlurmOptions",
    "WorkerOptions",
    "kubernetes_manifest",
    "slurm_launch",
    "write_storage_file",
]
