"""Training and evaluation: the LightningModule, the multi-view test metric and its results writer, the
warm-up half-cosine schedule, initialisation from published weights and the prediction writer."""

from gcvideo.training.init_weights import InitReport, init_from, read_state_dict
from gcvideo.training.module import Classifier, describe_data, load_classifier
from gcvideo.training.multiview_metric import MultiViewAccuracy
from gcvideo.training.prediction import PredictionWriter
from gcvideo.training.schedule import WarmupCosineLR
from gcvideo.training.sigterm_broadcast import SigtermBroadcastEvery
from gcvideo.training.test_results import TestResultsWriter

__all__ = [
    "Classifier", "InitReport", "MultiViewAccuracy", "PredictionWriter", "SigtermBroadcastEvery", "TestResultsWriter",
    "WarmupCosineLR", "describe_data", "init_from", "load_classifier", "read_state_dict",
]
