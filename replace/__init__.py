"""replace: train a neural surrogate of a legacy function and swap it in safely.

Imports `probes`, never `explain`.
"""

from ._distributed import fit_distributed
from ._fit import FitConfig, FitOptions, fit
from ._models import Architecture
from ._predictions import BatchPrediction, OnePrediction, SurrogateMetrics
from ._surrogate import Surrogate
from ._swap import Disagreement, GuardCalibration, SwapStats, Swapped, calibrate_guard, swap
from ._train import TrainConfig, train_model

__all__ = [
    "Architecture",
    "BatchPrediction",
    "Disagreement",
    "FitConfig",
    "FitOptions",
    "GuardCalibration",
    "OnePrediction",
    "Surrogate",
    "SurrogateMetrics",
    "SwapStats",
    "Swapped",
    "TrainConfig",
    "calibrate_guard",
    "fit",
    "fit_distributed",
    "swap",
    "train_model",
]
