"""Evaluation: metrics that make results comparable.

  suite          Evaluator / EvalSettings: the metrics a config names, on a generator
  inception      the FID Inception-v3 (Flax), its weights and preprocessing, features
  fid, kid, inception_score, precision_recall
                 sample metrics on feature arrays; reference_stats caches the real side
  classifier     jgan's MNIST / Fashion-MNIST classifiers and their sample metrics;
                 classifier_state the network and state a classifier run trains
  conditional    conditional samples (accuracy, per-class FD) and InfoGAN's codes
  stacked_mnist  PacGAN's Stacked MNIST mode count and KL
  modes          mode coverage on 2-D mixtures
  probe          linear probe and k-NN accuracy of frozen features
"""
from jgan.eval.classifier import (
    class_histogram,
    classifier_frechet_distance,
    conditional_accuracy,
    load_classifier,
)
from jgan.eval.conditional import (
    categorical_code_accuracy,
    class_conditional_latents,
    continuous_code_recovery,
    evaluate_conditional_samples,
    infogan_code_samples,
)
from jgan.eval.features import InceptionFeatures
from jgan.eval.fid import GaussianStats, fid, frechet_distance
from jgan.eval.inception import InceptionV3, params_from_torch_state
from jgan.eval.inception_score import inception_score
from jgan.eval.inception_weights import (
    InceptionWeights,
    InceptionWeightsError,
    load_inception_weights,
)
from jgan.eval.kid import kernel_inception_distance
from jgan.eval.modes import mode_statistics
from jgan.eval.precision_recall import density_coverage, prdc, precision_recall
from jgan.eval.preprocess import (
    RESIZE_METHODS,
    normalize_for_inception,
    resize_for_inception,
    to_uint8,
)
from jgan.eval.probe import encode_source, knn_accuracy, linear_probe, probe_encoder
from jgan.eval.protocol import protocol_record
from jgan.eval.reference_stats import load_or_compute_reference_stats, reference_stats_path
from jgan.eval.stacked_mnist import histogram_statistics, mode_histogram, stacked_mnist_modes
from jgan.eval.suite import METRICS, EvalError, EvalSettings, Evaluator

__all__ = [
    "METRICS", "RESIZE_METHODS", "EvalError", "EvalSettings", "Evaluator", "GaussianStats",
    "InceptionFeatures", "InceptionV3", "InceptionWeights", "InceptionWeightsError",
    "categorical_code_accuracy", "class_conditional_latents", "class_histogram",
    "classifier_frechet_distance", "conditional_accuracy", "continuous_code_recovery",
    "density_coverage", "encode_source", "evaluate_conditional_samples", "fid",
    "frechet_distance", "histogram_statistics", "inception_score", "infogan_code_samples",
    "kernel_inception_distance", "knn_accuracy", "linear_probe", "load_classifier",
    "load_inception_weights", "load_or_compute_reference_stats", "mode_histogram",
    "mode_statistics", "normalize_for_inception", "params_from_torch_state", "prdc",
    "precision_recall", "probe_encoder", "protocol_record", "reference_stats_path",
    "resize_for_inception", "stacked_mnist_modes", "to_uint8",
]
