"""What an encoder learned, measured the same way for every family that has one (the
autoencoder, VAE, AAE, VAE-GAN, BiGAN and BigBiGAN): eval.json's "family_metrics" get

probe
  The encoder's frozen features (each family says which: BigBiGAN's average-pooled
  trunk, an autoencoder's code) of the first `eval.probe_train` images of the train
  split (0: all) and of the family's held-out images (`<family>.eval_examples` of
  `eval.reference_split`), scored by `jgan.eval.probe`: multinomial logistic
  regression on both of BigBiGAN's readouts (the features as they are, and batch norm
  + CReLU) and the weighted cosine k-NN, with the protocol recorded.
reconstructions
  G(E(x)) of the held-out images: with a classifier (`eval.classifier_workdir`) the
  share it labels as x's own label (`label_agreement`) beside its accuracy on the
  originals (the ceiling), and the sample metrics of `eval.metrics` that compare with
  real images (FID, KID, precision/recall, classifier feature distance) computed on
  the reconstructions in place of samples (`reconstruction_metrics`), against the same
  reference images the samples are scored against.
"""
from __future__ import annotations

import jax
import ml_collections
import numpy as np

from jgan.eval import probe as probe_lib
from jgan.eval import suite
from jgan.families import encoder_decoder as ed

# The sample metrics that also score reconstructions: those against real images.
RECONSTRUCTION_METRICS = ("fid", "kid", "pr", "classifier_fd")
PROBE_L2 = 1e-4
PROBE_K = 20
KNN_TEMPERATURE = 0.07


def features_fn(game, *, use_ema: bool, prepare=None):
    """Jitted `(state, x [B, R, R, C]) -> [B, D]`: the "encoder" network's `features`
    (`encoder_decoder.encoder_features`) of `prepare(x)` (a jnp map inside the jit,
    e.g. BigBiGAN's resize to the encoder's resolution; None: x), with the sampling
    weights (EMA where kept and `use_ema`)."""
    prepare = prepare or (lambda x: x)

    @jax.jit
    def features(state, x):
        nets = game.bind(state, train=False, rng=jax.random.key(0), use_ema=use_ema)
        return ed.encoder_features(nets, prepare(x))
    return features


class RepresentationEvaluation:
    """`evaluate(state, x, labels, reconstructions) -> {"probe", "reconstructions"}`
    (module docstring); build once per run, so the classifier and Inception network
    load once.

    Args:
      config: the run's config.
      features: jitted `(state, x [B, R, R, C] in [-1, 1]) -> [B, D]`, the encoder's
        frozen features.
      batch_size: images per `features` call.
      encoder_input: numpy `x -> what the encoder reads` for both splits (a VAE's
        binarized images), or None for the images themselves.
    """

    def __init__(self, config: ml_collections.ConfigDict, *, features, batch_size: int,
                 encoder_input=None):
        self.config = config
        self.features = features
        self.batch_size = batch_size
        self.encoder_input = encoder_input or (lambda x: x)
        self.eval = suite.eval_section(config)
        metrics = suite.parse_metrics(self.eval.metrics)
        self.metrics = tuple(m for m in metrics if m in RECONSTRUCTION_METRICS)
        self._evaluator = None
        self._train = None

    def _evaluator_for(self, num: int) -> suite.Evaluator | None:
        if not self.metrics and not self.eval.classifier_workdir:
            return None
        if self._evaluator is None or self._evaluator.settings.num_samples != num:
            settings = suite.EvalSettings.from_config(self.config, metrics=self.metrics,
                                                      num_samples=num)
            self._evaluator = suite.Evaluator(settings)
        return self._evaluator

    def _train_examples(self):
        if self._train is None:
            self._train = ed.labelled_examples(self.config, self.eval.probe_train, split="train")
        return self._train

    def _encode(self, state, x: np.ndarray) -> np.ndarray:
        x = self.encoder_input(x)
        return ed.batched(lambda i, chunk: {"f": self.features(state, chunk)}, x,
                          min(self.batch_size, len(x)))["f"]

    def probe(self, state, x: np.ndarray, labels: np.ndarray) -> dict:
        """`jgan.eval.probe`'s linear probes (both readouts) and k-NN of the encoder's
        features, train split against the held-out images `x` with `labels`."""
        train_x, train_labels = self._train_examples()
        train_features, test_features = self._encode(state, train_x), self._encode(state, x)
        bn_train, bn_test = probe_lib.readout(train_features, test_features, "bn_crelu")
        k = min(PROBE_K, len(train_x))
        return {
            "linear": probe_lib.linear_probe(train_features, train_labels, test_features,
                                             labels, l2=PROBE_L2),
            "linear_bn_crelu": probe_lib.linear_probe(bn_train, train_labels, bn_test, labels,
                                                      l2=PROBE_L2),
            "knn_top1": probe_lib.knn_accuracy(train_features, train_labels, test_features,
                                               labels, k=k, temperature=KNN_TEMPERATURE),
            "num_train": int(len(train_x)), "num_test": int(len(x)),
            "feature_dim": int(train_features.shape[1]),
            "protocol": {
                "features": "the encoder's frozen features (inference mode, the sampling "
                            "weights), images in [-1, 1] as the training pipeline reads them",
                "examples": f"the first num_train images of {self.config.data.name}/train, "
                            f"the first num_test of {self.config.data.name}/"
                            f"{self.eval.reference_split}",
                "linear": "multinomial logistic regression on train-standardized features, "
                          "L2-regularized, full-batch L-BFGS (jgan.eval.probe.linear_probe)",
                "linear_bn_crelu": "the same on batch norm (train statistics, no scale) + "
                                   "CReLU (BigBiGAN's second readout, jgan.eval.probe.readout)",
                "l2": PROBE_L2,
                "knn": "weighted k-NN, cosine similarity, votes exp(s / T) (Wu et al. 2018)",
                "k": k, "temperature": KNN_TEMPERATURE},
        }

    def reconstructions(self, x: np.ndarray, labels: np.ndarray,
                        reconstructions: np.ndarray) -> dict:
        """The classifier's agreement on G(E(x)) and the reference metrics of the
        reconstructions (module docstring); {} with neither a classifier nor a metric."""
        evaluator = self._evaluator_for(len(x))
        if evaluator is None:
            return {}
        out = {"num_examples": int(len(x)), "split": self.eval.reference_split}
        if self.eval.classifier_workdir:
            classifier = evaluator.classifier
            on_reconstructions = np.argmax(classifier.logits_and_features(reconstructions)[0], -1)
            on_originals = np.argmax(classifier.logits_and_features(x)[0], -1)
            out.update({"label_agreement": float(np.mean(on_reconstructions == labels)),
                        "classifier_accuracy_on_originals": float(np.mean(on_originals == labels)),
                        "classifier_workdir": str(self.eval.classifier_workdir)})
        if self.metrics:
            batch = evaluator.settings.batch_size
            out["metrics"] = evaluator.evaluate(reconstructions[i:i + batch]
                                                for i in range(0, len(x), batch))
        out["protocol"] = ("G(E(x)) of the held-out images; label_agreement: the share the "
                           "classifier of eval.classifier_workdir labels as x's label; "
                           "metrics: eval.metrics' reference metrics with the "
                           "reconstructions in place of samples")
        return out

    def __call__(self, state, x: np.ndarray, labels: np.ndarray,
                 reconstructions: np.ndarray | None) -> dict:
        """`{"probe": ..., "reconstructions": ...}` of `state` (the latter only with
        `reconstructions` and a classifier or a reference metric)."""
        result = {"probe": self.probe(state, x, labels)}
        if reconstructions is not None:
            scored = self.reconstructions(x, labels, np.clip(reconstructions, -1.0, 1.0))
            if scored:
                result["reconstructions"] = scored
        return result


def for_game(config: ml_collections.ConfigDict, game, *, batch_size: int, prepare=None,
             encoder_input=None) -> RepresentationEvaluation:
    """The `RepresentationEvaluation` of `game`'s "encoder" network: its `features` of
    `prepare(x)` (see `features_fn`) with the sampling weights the run keeps (EMA when
    `config.game.ema_decay` is set), `batch_size` images per call."""
    use_ema = config.game.get("ema_decay") is not None
    return RepresentationEvaluation(
        config, features=features_fn(game, use_ema=use_ema, prepare=prepare),
        batch_size=batch_size, encoder_input=encoder_input)


def summary(result: dict) -> dict:
    """Headline scalars of a family result holding `RepresentationEvaluation`'s keys."""
    out = {}
    probe = result.get("probe")
    if probe:
        out["eval/probe_linear_top1"] = float(probe["linear"]["top1"])
        out["eval/probe_bn_crelu_top1"] = float(probe["linear_bn_crelu"]["top1"])
        out["eval/probe_knn_top1"] = float(probe["knn_top1"])
    recon = result.get("reconstructions") or {}
    if "label_agreement" in recon:
        out["eval/reconstruction_label_agreement"] = float(recon["label_agreement"])
    for name, value in suite.scalar_summary(recon.get("metrics") or {}).items():
        out[name.replace("eval/", "eval/reconstruction_", 1)] = value
    return out
