"""Training and evaluation (issue 4): the LightningModule, the multi-view test metric, the warm-up
half-cosine schedule, initialisation from published weights and the prediction writer."""

from gcvideo.training.init_weights import InitReport, init_from, read_state_dict
from gcvideo.training.module import Classifier, describe_data, load_classifier
from gcvideo.training.multiview_metric import MultiViewAccuracy
from gcvideo.training.prediction import PredictionWriter
from gcvideo.training.schedule import WarmupCosineLR
from gcvideo.training.sigterm_broadcast import SigtermBroadcastEvery

__all__ = [
    "Classifier", "InitReport", "MultiViewAccuracy", "PredictionWriter", "SigtermBroadcastEvery", "WarmupCosineLR",
    "describe_data", "init_from", "load_classifier", "read_state_dict",
]
