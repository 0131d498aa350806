"""sweeper: hyperparameter sweeps for ORPO + LoRA fine-tuning.

Data flows one way: study file -> study -> trial -> training -> metrics -> storage -> analysis -> report/export.
"""

__version__ = "0.1.0"
