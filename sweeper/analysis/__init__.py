"""Analysis: reads only storage (Optuna's tables and the curves table) and returns plain data.

`analyze_study(study_name, storage)` -> `StudyAnalysis`: per-trial fit (beta-free losses, generalization gap,
validation rise after its minimum, underfit / balanced / overfit), importances per objective and for the gap,
rank correlations with bootstrap CIs, effect shapes (a GP surrogate's partial dependence: increasing, decreasing,
an optimum inside the range, flat), the practitioner's claims with verdicts, and the seed-to-seed spread of
replicates. The report and the export render or write this data; they never read storage themselves.
"""

from ._analyze import analyze_study, load_stored_study, parameter_value
from ._claims import CLAIMS, Claim
from ._correlation import spearman_with_ci
from ._data import (
    BALANCED,
    CONTRADICTED,
    EFFECTIVE_BATCH_SIZE,
    EVAL_LOSS,
    GAP,
    INCONCLUSIVE,
    LOSS_FORM,
    OVERFIT,
    SUPPORTED,
    TRAIN_LOSS,
    UNDERFIT,
    ClaimVerdict,
    Correlation,
    CurveSeries,
    FitRule,
    HypervolumeHistory,
    Importance,
    ObjectiveInfo,
    ParameterInfo,
    ReplicateGroup,
    SeedSpread,
    StudyAnalysis,
    TrialFit,
    TrialRow,
    pareto_then_latest,
)
from ._importance import FANOVA, PED_ANOVA
from ._summary import what_we_learned
from ._interactions import PairInteraction, describe_interaction
from ._shapes import DECREASING, FLAT, INCREASING, OPTIMUM_INSIDE, UNCLEAR, EffectShape, describe_shape

__all__ = [
    "what_we_learned",
    "DECREASING",
    "FLAT",
    "INCREASING",
    "OPTIMUM_INSIDE",
    "UNCLEAR",
    "EffectShape",
    "PairInteraction",
    "describe_interaction",
    "describe_shape",
    "parameter_value",
    "pareto_then_latest",
    "BALANCED",
    "CLAIMS",
    "CONTRADICTED",
    "EFFECTIVE_BATCH_SIZE",
    "EVAL_LOSS",
    "FANOVA",
    "GAP",
    "INCONCLUSIVE",
    "LOSS_FORM",
    "OVERFIT",
    "PED_ANOVA",
    "SUPPORTED",
    "TRAIN_LOSS",
    "UNDERFIT",
    "Claim",
    "ClaimVerdict",
    "Correlation",
    "CurveSeries",
    "FitRule",
    "HypervolumeHistory",
    "Importance",
    "ObjectiveInfo",
    "ParameterInfo",
    "ReplicateGroup",
    "SeedSpread",
    "StudyAnalysis",
    "TrialFit",
    "TrialRow",
    "analyze_study",
    "load_stored_study",
    "spearman_with_ci",
]
