"""The study: a study file (`studies/<name>.yaml`) read into a checked StudySpec, its search space, its objectives
and the Optuna sampler it asks for. Reads only the training-config schema; knows nothing of training or storage."""

from ._labels import SHORT_LABELS, label_legend, short_label
from ._objectives import OBJECTIVES, MissingMetricError, Objective, get_objective
from ._samplers import SAMPLER_OPTIONS, PrunerSpec, SamplerSpec, build_pruner, build_sampler
from ._space import Parameter, SearchSpace, SpaceError
from ._study_file import ObjectiveSpec, StudySpec, beta_scaled_warnings, load_study_spec

__all__ = [
    "OBJECTIVES",
    "SHORT_LABELS",
    "SAMPLER_OPTIONS",
    "MissingMetricError",
    "Objective",
    "ObjectiveSpec",
    "Parameter",
    "PrunerSpec",
    "SamplerSpec",
    "SearchSpace",
    "SpaceError",
    "StudySpec",
    "beta_scaled_warnings",
    "build_pruner",
    "build_sampler",
    "get_objective",
    "label_legend",
    "load_study_spec",
    "short_label",
]
