from ._pruner import MultiMetricPruner
from ._trial import MultiMetricPrunerTrial


__all__ = ["MultiMetricPruner", "MultiMetricPrunerTrial"]
