"""Export: the Pareto-front trials of an analysis as re-runnable training configs plus a provenance manifest."""

from ._pareto import MANIFEST_JSON, MANIFEST_YAML, ExportedTrial, ExportManifest, export_pareto, trial_file_name

__all__ = ["MANIFEST_JSON", "MANIFEST_YAML", "ExportManifest", "ExportedTrial", "export_pareto", "trial_file_name"]
