"""Training: one ORPO + LoRA run through TRL. `_orpo.py` runs a trial top to bottom; `_trl.py` is the only module
that imports TRL and PEFT; `_models.py` loads the model, `_pairs.py` the data, `_reuse.py` keeps both between trials;
`_pack.py` trains several trials at once on one base model."""

from ._models import is_out_of_memory, load_base_model, release_memory
from ._orpo import run_orpo
from ._pack import PackOutOfMemory, TrainingPack
from ._pairs import PreparedPairs, pairs_key, prepare_pairs, trainable_pairs
from ._reuse import ReuseCounts, TrialReuse, weights_fingerprint
from ._trl import NonFiniteLossError, parse_with_trl_and_peft

__all__ = [
    "NonFiniteLossError",
    "PackOutOfMemory",
    "ReuseCounts",
    "TrainingPack",
    "TrialReuse",
    "is_out_of_memory",
    "load_base_model",
    "pairs_key",
    "parse_with_trl_and_peft",
    "PreparedPairs",
    "prepare_pairs",
    "release_memory",
    "run_orpo",
    "trainable_pairs",
    "weights_fingerprint",
]
