"""What sweeper stores about a trial, in one place: the schema of the Optuna user attributes every writer sets and
every reader reads (optuna-dashboard and `optuna.load_study` show them as they are, one attribute per field).

Writers set a few fields at a time as the trial goes (`store(trial, planned_steps=144)`): a name outside the schema
is an error, not a new attribute. Readers take `TrialRecord.of(trial)`: every field, None where the trial has not
stored it (a trial from an older sweeper, one that failed early, a replicate queued but not run yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Protocol


class HasUserAttrs(Protocol):
    """`optuna.Trial`, `optuna.trial.FrozenTrial`, or anything else with `set_user_attr`."""

    def set_user_attr(self, key: str, value: Any) -> None: ...


# the final metrics are stored one attribute each, under TRL's names: `eval_nll_loss`, `train_rewards/margins`
METRIC_PREFIXES = ("train_", "eval_")


@dataclass(frozen=True)
class TrialRecord:
    # -- as the trial starts (sweep/_objective.py)
    worker: str | None = None  # host:pid of the process that ran it
    suggest_s: float | None = None  # seconds the sampler took to suggest its parameters
    study_inputs: str | None = None  # digest of the study inputs it ran on (sweep/_identity.py)
    training_config: dict[str, Any] | None = None  # the whole config it trained with: base, fixed and sampled
    config_hash: str | None = None  # of training_config: equal configs, equal hashes
    effective_batch_size: int | None = None  # micro batch x accumulation x devices
    planned_steps: int | None = None  # optimizer steps its schedule has: where fraction rungs fall
    pack_size: int | None = None  # trained in a pack of this many (sweep/_worker.py); None: alone. Its runtime_s
    # then includes the other trials' turns
    # -- queued by `sweeper replicate`: the trial it repeats with another seed
    replicate_of: int | None = None
    replicate_seed: int | None = None
    # -- as it ends (storage/_record.py)
    metrics: dict[str, float | None] = field(default_factory=dict)  # final train_/eval_ metrics; None: not finite
    global_steps: int | None = None
    runtime_s: float | None = None
    device_count: int | None = None
    dropped_long_prompts: int | None = None
    train_rows: int | None = None
    eval_rows: int | None = None
    dataset_fingerprint: str | None = None
    bf16: bool | None = None  # what `bf16: auto` became on its device
    library_versions: dict[str, str] | None = None
    notes: list[str] | None = None  # what the run noticed (e.g. prompts dropped for length)
    # -- pruned (sweep/_intermediate.py decides)
    pruned_reason: str | None = None
    pruned_at_step: int | None = None
    # -- failed
    failure_reason: str | None = None  # short, e.g. "out of memory at micro_batch_size=16"
    failure_detail: str | None = None  # the error's text, cut to 2,000 characters
    repeats_trial: int | None = None  # a refused repeat: the trial whose parameters it drew again

    @classmethod
    def of(cls, trial: Any) -> TrialRecord:
        """The record of a stored trial (a FrozenTrial, a live Trial, or anything with `user_attrs`)."""
        attrs = trial.user_attrs
        known = {name: attrs.get(name) for name in _FIELDS}
        metrics = {key: value for key, value in attrs.items() if key.startswith(METRIC_PREFIXES) and key not in _FIELDS}
        return cls(**known, metrics=metrics)

    def user_attrs(self) -> dict[str, Any]:
        """The attributes this record stores: its fields that are set, its metrics one attribute each."""
        stored = {name: getattr(self, name) for name in _FIELDS if getattr(self, name) is not None}
        return {**stored, **self.metrics}


_FIELDS = tuple(item.name for item in fields(TrialRecord) if item.name != "metrics")
_FIELD_SET = frozenset(_FIELDS)


def stored_fields(trial: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    """The named fields of a trial's record, None where it has not stored one, without building the record: for a
    reader of thousands of trials (a whole record walks every attribute: 0.4 s of a pruning decision's 10,000
    peers; a record of two fields still 0.07 s)."""
    if not _FIELD_SET.issuperset(names):
        raise TypeError(f"not fields of TrialRecord: {', '.join(sorted(set(names) - _FIELD_SET))}")
    attrs = trial.user_attrs
    return tuple(attrs.get(name) for name in names)


def store(trial: HasUserAttrs, **values: Any) -> None:
    """Set these fields of a trial's record (`metrics` as one attribute per metric)."""
    unknown = sorted(set(values) - set(_FIELDS) - {"metrics"})
    if unknown:
        raise TypeError(f"not fields of TrialRecord: {', '.join(unknown)} (add them to sweeper/storage/_trial_record.py)")
    metrics = values.pop("metrics", None) or {}
    bad = sorted(name for name in metrics if not name.startswith(METRIC_PREFIXES) or name in _FIELDS)
    if bad:
        raise TypeError(f"metric names must start with train_ or eval_ and not be a field's: {', '.join(bad)}")
    for key, value in {**values, **metrics}.items():
        trial.set_user_attr(key, value)
