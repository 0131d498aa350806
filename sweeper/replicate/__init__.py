"""Replicate: re-run the top Pareto configurations with other seeds in a companion study, so the analysis can put
the seed-to-seed spread beside every difference it reports."""

from ._run import ReplicateRun, check_reproducible, replicate_seeds, run_replicates, top_pareto_trials

__all__ = ["ReplicateRun", "check_reproducible", "replicate_seeds", "run_replicates", "top_pareto_trials"]
