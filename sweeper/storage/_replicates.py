"""How replicates are stored: re-runs of a trial with other seeds, in a companion study of the same storage.

The companion study `<study_name>.replicates` keeps the source study's objectives and its own trial numbers; each
of its trials carries `replicate_of` (the source trial's number) and `replicate_seed` in its TrialRecord, so the
source study's trials, its Pareto front and its trial count stay untouched.
"""

REPLICATES_SUFFIX = ".replicates"


def replicates_study_name(study_name: str) -> str:
    return f"{study_name}{REPLICATES_SUFFIX}"
