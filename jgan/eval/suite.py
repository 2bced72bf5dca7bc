"""The evaluation a config names, run on a generator: one pass over samples, every metric.

    evaluator = Evaluator(EvalSettings.from_config(config))
    results = evaluator.evaluate(sample_batches)   # iterator of image batches in [-1, 1]

Metrics (names as configs and `jgan.evaluate --metrics` spell them):

  fid             Frechet Inception distance (Heusel et al. 2017), streamed float64 stats
  kid             kernel Inception distance (Binkowski et al. 2018), mean and std
  pr              precision / recall (Kynkaanniemi et al. 2019) and density / coverage
                  (Naeem et al. 2020) on Inception pool3 features
  is              Inception Score (Salimans et al. 2016); needs weights with the 1008-way
                  classifier (pytorch-fid's published file has it, the pool3-only file not)
  classifier_fd   Frechet distance in a trained jgan classifier's feature space (fast on CPU)
  classifier_is   Inception-Score formula on that classifier's logits
  class_histogram the classifier's predicted-class histogram of the samples
  stacked_mnist   modes and KL of Stacked MNIST samples (Lin et al. 2018, PacGAN)

Real images are the first `num_real` examples of the reference split, at the run's
resolution and channels (resized like the training data). A run trained on an image
folder (`data.kind="image_folder"`) is compared with a folder instead: `eval.reference_root`,
by default the training folder itself (the few-shot protocol of DiffAugment and ADA),
read as training reads it, in its sorted file order; a folder smaller than `num_real`
gives all its images (the protocol record says how many). Inception reference
statistics and features are cached on disk per dataset (a folder: a fingerprint of its
files' paths, sizes and modification times), split, resolution, resize method,
weights' checksum and sample count (`jgan.eval.reference_stats`); an `Evaluator` also
keeps them in memory, so evaluating during training pays for the real side once.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path
from collections.abc import Callable, Iterable

import numpy as np

from jgan.errors import JganError
from jgan.eval import classifier as classifier_lib
from jgan.eval.fid import GaussianStats, fid
from jgan.eval.inception_score import inception_score
from jgan.eval.kid import kernel_inception_distance
from jgan.eval.precision_recall import prdc
from jgan.eval.protocol import protocol_record
from jgan.eval.reference_stats import load_or_compute_reference_stats, reference_stats_path
from jgan.eval.stacked_mnist import PROTOCOL_NUM_SAMPLES as STACKED_MNIST_SAMPLES
from jgan.eval.stacked_mnist import stacked_mnist_modes

INCEPTION_METRICS = ("fid", "kid", "pr", "is")
CLASSIFIER_METRICS = ("classifier_fd", "classifier_is", "class_histogram", "stacked_mnist")
METRICS = INCEPTION_METRICS + CLASSIFIER_METRICS
# Metrics that compare with real images; the others only look at the samples.
_NEEDS_REAL = ("fid", "kid", "pr", "classifier_fd")


def default_eval_config():
    """The `eval` section every config has (experiments/configs/base.py), with defaults.

    metrics: comma-separated names ("" = none); every: steps between evaluations during
    training (0 = only at the end); reference_split: the real data's split (TFDS);
    reference_root: image-folder runs, the folder of real images ("" = the training
    folder `data.root`);
    standing_stats: recompute the sampling generator's batch-norm averages over this many
    batches of its inputs before sampling (0 = off; `jgan.standing_statistics`);
    probe_train: train images the encoder families' linear probe and k-NN fit on (0 =
    all; `jgan.families.representation`); the rest
    as in `EvalSettings`.
    """
    import ml_collections
    e = ml_collections.ConfigDict()
    e.metrics = ""
    e.every = 0
    e.num_samples = 10_000
    e.num_real = 10_000
    e.reference_split = "test"
    e.reference_root = ""  # image_folder runs: the real images' folder ("" = data.root)
    e.resize_method = "pil_bicubic"
    e.inception_weights = ""
    e.classifier_workdir = ""
    e.batch_size = 200
    e.standing_stats = 0   # batches for the generator's standing batch-norm statistics
    e.probe_train = 0      # encoder families: train images the linear probe fits (0: all)
    return e


def eval_section(config):
    """A run's `eval` section over `default_eval_config` (runs saved before a key, or
    the section, existed get the defaults)."""
    e = default_eval_config()
    e.update(config.get("eval", {}))
    return e


class EvalError(JganError, ValueError):
    """A metric cannot be computed as asked (the message names the setting to change)."""


def parse_metrics(metrics: str | Iterable[str]) -> tuple[str, ...]:
    """"fid, kid,pr" -> ("fid", "kid", "pr"); unknown names raise `EvalError`."""
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",")]
    names = tuple(dict.fromkeys(m for m in metrics if m))
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise EvalError(f"Unknown metric(s) {unknown}; known: {', '.join(METRICS)}.")
    return names


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """What to measure and against which data (the `eval` section of a config).

    Attributes:
      metrics: metric names (see the module docstring).
      num_samples: generated images per evaluation (Stacked MNIST's protocol uses 26,000).
      num_real: real images of the reference split (the first ones, in order); a
        reference folder with fewer images gives all of them.
      dataset, split, data_dir: the reference data (TFDS name or "stacked_mnist").
      reference_root: a folder of real images (`jgan.data.images.ImageFolderSource`, in
        its sorted file order) that replaces dataset / split; None for TFDS data.
      skip_corrupt: leave unreadable files of `reference_root` out (`data.skip_corrupt`).
      resolution, channels: the generator's image shape.
      resize_method: Inception resize, "pil_bicubic" (clean-fid) or "tf_bilinear".
      data_resize: how the real images reach the run's resolution, as the training data
        ("bicubic" or "pad", `config.data.resize`).
      inception_weights: weights file ("" = `JGAN_INCEPTION_WEIGHTS` or the cache).
      classifier_workdir: a trained `experiments/configs/classifier_*.py` run.
      batch_size: images per feature-extraction call.
      kid_subsets, kid_subset_size, pr_k, dc_k, is_splits: the metrics' own settings.
    """
    metrics: tuple[str, ...]
    dataset: str
    split: str
    resolution: int
    channels: int
    data_dir: str | None = None
    num_samples: int = 10_000
    num_real: int = 10_000
    resize_method: str = "pil_bicubic"
    inception_weights: str | None = None
    classifier_workdir: str | None = None
    batch_size: int = 200
    data_resize: str = "bicubic"
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    pr_k: int = 3
    dc_k: int = 5
    is_splits: int = 10
    reference_root: str | None = None
    skip_corrupt: bool = False

    @classmethod
    def from_config(cls, config, **overrides) -> EvalSettings:
        """Settings from a run's config: its `eval` section and its data."""
        e, d = eval_section(config), config.data
        dataset = "stacked_mnist" if d.kind == "stacked_mnist" else d.name
        settings = dict(
            metrics=parse_metrics(e.metrics), dataset=dataset,
            split=e.reference_split, data_dir=d.data_dir or None,
            resolution=d.resolution, channels=d.channels, num_samples=e.num_samples,
            num_real=e.num_real, resize_method=e.resize_method,
            inception_weights=e.inception_weights or None,
            classifier_workdir=e.classifier_workdir or None, batch_size=e.batch_size,
            data_resize=d.get("resize", "bicubic"))
        if d.kind == "image_folder":
            settings.update(split="all", skip_corrupt=bool(d.get("skip_corrupt", False)))
        settings.update(overrides)
        if "metrics" in overrides:
            settings["metrics"] = parse_metrics(overrides["metrics"])
        root = settings.get("reference_root", e.get("reference_root", "")) or ""
        if d.kind == "image_folder":  # the training folder, unless another is named
            settings["reference_root"] = root or d.root
        elif root:
            raise EvalError(f"eval.reference_root={root!r}: a reference folder replaces the "
                            "training folder of data.kind='image_folder' runs; this run has "
                            f"data.kind={d.kind!r} (its reference is eval.reference_split).")
        else:
            settings["reference_root"] = None
        if d.kind == "mixture" and any(m in _NEEDS_REAL for m in settings["metrics"]):
            raise EvalError(f"eval.metrics: {settings['metrics']} compare with a TFDS or Stacked "
                            f"MNIST reference split, or an image folder; data.kind={d.kind!r} "
                            "has none.")
        return cls(**settings)


def folder_fingerprint(root, files: Iterable) -> str:
    """12 hex digits of sha256 over each file's path relative to `root`, size and
    modification time (ns), in the given (sorted) order: any added, removed, renamed or
    rewritten file changes it."""
    root = Path(root)
    h = hashlib.sha256()
    for f in files:
        st = os.stat(f)
        rel = Path(f).relative_to(root).as_posix()
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class FolderReference:
    """A folder of real images as the reference: its source (files checked, sorted),
    absolute path and content fingerprint (`folder_fingerprint`)."""
    source: object
    root: Path
    fingerprint: str

    @property
    def name(self) -> str:
        return f"folder:{self.root}"


def folder_reference(settings: EvalSettings) -> FolderReference:
    """The `ImageFolderSource` over `settings.reference_root`, as training reads it.

    Raises:
      DataError: the folder is missing, holds no images, or a corrupt one without
        `skip_corrupt` (names the folder or file).
    """
    from jgan.data.images import ImageFolderSource
    source = ImageFolderSource(settings.reference_root, resolution=settings.resolution,
                               channels=settings.channels, skip_corrupt=settings.skip_corrupt)
    return FolderReference(source=source, root=source.root.resolve(),
                           fingerprint=folder_fingerprint(source.root, source.files))


def _real_source(settings: EvalSettings):
    if settings.dataset == "stacked_mnist":
        from jgan.data.stacked_mnist import stacked_mnist_source
        return stacked_mnist_source(settings.split, settings.data_dir)
    from jgan.data.images import tfds_source
    return tfds_source(settings.dataset, split=settings.split, data_dir=settings.data_dir)


def real_images(settings: EvalSettings, num: int, *, source=None) -> np.ndarray:
    """The first `num` images of the reference split (or folder) as uint8 `(num, R, R, C)`.

    `source`: the reference's source when already built (a `FolderReference.source`).
    Raises `EvalError` when the split has fewer than `num` examples.
    """
    from jgan.data.images import to_run_shape
    if source is None:
        source = (folder_reference(settings).source if settings.reference_root is not None
                  else _real_source(settings))
    if len(source) < num:
        where = (f"the image folder {settings.reference_root}" if settings.reference_root
                 is not None else f"{settings.dataset}/{settings.split}")
        raise EvalError(f"eval.num_real={num}, but {where} has only {len(source)} examples.")
    out = np.empty((num, settings.resolution, settings.resolution, settings.channels), np.uint8)
    for i in range(num):
        out[i] = to_run_shape(np.asarray(source[i]["image"]), settings.resolution,
                              settings.channels, settings.data_resize)
    return out


class Evaluator:
    """Computes `settings.metrics` for batches of generated images.

    The Inception network and the classifier are loaded on first use; the real side
    (Inception statistics and features, classifier features) is computed once.
    """

    def __init__(self, settings: EvalSettings, *, mesh=None, log: Callable[[str], None] = print):
        self.settings = settings
        self._mesh = mesh
        self._log = log
        self._inception = None
        self._weights_sha = None
        self._classifier = None
        self._real = {}
        self._real_images = None
        self._folder = None
        self._check()

    # ----------------------------------------------------------------- set-up
    def _check(self):
        s = self.settings
        if s.num_samples < 2:
            raise EvalError(f"eval.num_samples must be >= 2, got {s.num_samples}.")
        if any(m in _NEEDS_REAL for m in s.metrics) and s.num_real < 2:
            raise EvalError(f"eval.num_real must be >= 2, got {s.num_real}.")
        if any(m in CLASSIFIER_METRICS for m in s.metrics) and not s.classifier_workdir:
            raise EvalError(
                f"eval.classifier_workdir is empty, but {[m for m in s.metrics if m in CLASSIFIER_METRICS]} "
                "need a trained classifier: train one with `python -m experiments.main "
                "--config=experiments/configs/classifier_mnist.py --workdir=DIR` (or "
                "classifier_fashion_mnist.py) and pass DIR.")
        per_image = [m for m in ("classifier_fd", "classifier_is", "class_histogram")
                     if m in s.metrics]
        if "stacked_mnist" in s.metrics and per_image:
            raise EvalError(f"eval.metrics: stacked_mnist classifies each channel with a digit "
                            f"classifier; {per_image} would need a classifier of whole "
                            "3-channel images. Evaluate them separately.")
        if "stacked_mnist" in s.metrics and s.channels != 3:
            raise EvalError(f"eval.metrics: stacked_mnist needs 3-channel samples, the run has "
                            f"data.channels={s.channels}.")
        if s.reference_root is not None and any(m in _NEEDS_REAL for m in s.metrics):
            root = Path(s.reference_root).expanduser()
            if not root.is_dir():  # before training, not at its first evaluation
                from jgan.data.images import DataError
                raise DataError(f"The reference image folder {root} "
                                f"{'is not a directory' if root.exists() else 'does not exist'} "
                                "(eval.reference_root; \"\" means the training folder "
                                "data.root): check the path.")

    @property
    def inception(self):
        if self._inception is None:
            from jgan.eval.features import InceptionFeatures
            from jgan.eval.inception_weights import load_inception_weights
            weights = load_inception_weights(self.settings.inception_weights)
            if "is" in self.settings.metrics and not weights.has_logits:
                raise EvalError(
                    f"eval.metrics: 'is' needs Inception weights with the 1008-way classifier; "
                    f"{weights.path} holds pool3 features only. Use pytorch-fid's "
                    "pt_inception-2015-12-05-6726825d.pth (see jgan.eval.inception_weights).")
            self._weights_sha = weights.sha256
            self._inception = InceptionFeatures(weights, self.settings.resize_method,
                                                batch_size=self.settings.batch_size, mesh=self._mesh)
        return self._inception

    @property
    def classifier(self) -> classifier_lib.TrainedClassifier:
        if self._classifier is None:
            s = self.settings
            c = classifier_lib.load_classifier(s.classifier_workdir)
            want = (s.resolution, s.resolution, 1 if "stacked_mnist" in s.metrics else s.channels)
            if c.image_shape != want:
                raise EvalError(f"eval.classifier_workdir: the classifier in {s.classifier_workdir} "
                                f"takes images {c.image_shape}, the samples need {want}.")
            self._classifier = c
        return self._classifier

    def _uses_inception(self) -> bool:
        return any(m in INCEPTION_METRICS for m in self.settings.metrics)

    def _keeps_inception_features(self) -> bool:
        return any(m in ("kid", "pr") for m in self.settings.metrics)

    # ------------------------------------------------------------- real side
    @property
    def folder(self) -> FolderReference | None:
        """The reference folder (files listed and checked once), or None for TFDS data."""
        s = self.settings
        if s.reference_root is None:
            return None
        if self._folder is None:
            self._folder = folder_reference(s)
            source = self._folder.source
            if source.num_skipped:
                self._log(f"Skipped {source.num_skipped} unreadable image(s) in "
                          f"{self._folder.root}: {source.skipped[:5]}"
                          f"{' ...' if source.num_skipped > 5 else ''}")
            if len(source) < 2:
                raise EvalError(f"The reference image folder {self._folder.root} has one "
                                "readable image; FID and its kin need at least 2.")
            if len(source) < s.num_real:
                self._log(f"eval.num_real={s.num_real}, but the reference folder "
                          f"{self._folder.root} has {len(source)} images: using all "
                          f"{len(source)}.")
        return self._folder

    @property
    def num_real(self) -> int:
        """Real images the metrics compare with: `settings.num_real`, or all of a smaller
        reference folder's."""
        n = self.settings.num_real
        return n if self.folder is None else min(n, len(self.folder.source))

    def reference_name(self) -> str:
        """"mnist/test", or "folder:/abs/path" for a reference folder."""
        s = self.settings
        return f"{s.dataset}/{s.split}" if self.folder is None else self.folder.name

    def _reference_protocol(self) -> dict:
        """What the protocol records of the metrics with a real side say about it."""
        out = dict(num_real=self.num_real, reference=self.reference_name())
        if self.folder is not None:
            out.update(reference_folder=str(self.folder.root),
                       reference_fingerprint=self.folder.fingerprint,
                       reference_folder_images=len(self.folder.source),
                       num_real_requested=self.settings.num_real)
        return out

    def real_images(self) -> np.ndarray:
        """The reference images, read once (Inception and classifier metrics share them)."""
        if self._real_images is None:
            source = None if self.folder is None else self.folder.source
            self._real_images = real_images(self.settings, self.num_real, source=source)
        return self._real_images

    def _reference_key(self) -> dict:
        s = self.settings
        # Padded real images differ from resized ones at the same resolution: the key's
        # dataset tells them apart (resized keys keep their old form; the resolution
        # field must stay a number).
        dataset, split = s.dataset, s.split
        if s.data_resize != "bicubic":
            dataset = f"{dataset}-{s.data_resize}"
        if self.folder is not None:
            # The folder's content, and its name for a readable file name.
            dataset, split = f"folder-{self.folder.fingerprint}-{self.folder.root.name[:40]}", "all"
        return dict(dataset=dataset, split=split, resolution=s.resolution,
                    resize_method=s.resize_method, weights_sha256=self._weights_sha,
                    num_samples=self.num_real)

    def real_inception(self) -> dict:
        """{"stats": GaussianStats, "features": (num_real, 2048) or None}, cached on disk."""
        if "inception" in self._real:
            return self._real["inception"]
        _ = self.inception  # loads the weights, so the key has their checksum
        key = self._reference_key()
        features_path = reference_stats_path(**key).with_suffix(".features.npy")
        features = None

        def compute() -> GaussianStats:
            nonlocal features
            t = time.time()
            features = self.inception(self.real_images())["pool3"]
            self._log(f"Inception features of {self.num_real} real images "
                      f"({self.reference_name()}) in {time.time() - t:.0f} s.")
            return GaussianStats.from_features(features)

        if self._keeps_inception_features() and not features_path.exists():
            stats = compute()
            stats = load_or_compute_reference_stats(key, lambda: stats)
        else:
            stats = load_or_compute_reference_stats(key, compute)
        if features is not None and not features_path.exists():
            features_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = features_path.with_suffix(".tmp.npy")
            np.save(tmp, features)
            tmp.replace(features_path)
        if features is None and self._keeps_inception_features():
            features = np.load(features_path)
        self._real["inception"] = {"stats": stats, "features": features}
        return self._real["inception"]

    def real_classifier_features(self) -> np.ndarray:
        if "classifier" not in self._real:
            _, feats = self.classifier.logits_and_features(self.real_images())
            self._real["classifier"] = feats
        return self._real["classifier"]

    # ---------------------------------------------------------------- samples
    def evaluate(self, sample_batches: Iterable[np.ndarray]) -> dict:
        """Every metric of `settings.metrics` on the first `num_samples` generated images.

        Args:
          sample_batches: iterable of float arrays `(B, R, R, C)` in [-1, 1]; it is
            consumed until `num_samples` images have been seen.
        Returns:
          {metric: result dict with its numbers and a "protocol" record}.
        """
        s = self.settings
        t0 = time.time()
        use_inception = self._uses_inception()
        use_classifier = any(m in CLASSIFIER_METRICS for m in s.metrics)
        stats = GaussianStats.empty(2048) if use_inception else None
        pool3, logits, cls_logits, cls_feats, stacked = [], [], [], [], []
        seen = 0
        for batch in sample_batches:
            batch = np.asarray(batch)[: s.num_samples - seen]
            expected = (s.resolution, s.resolution, s.channels)
            if batch.ndim != 4 or batch.shape[1:] != expected:
                raise EvalError(f"Generated batch has shape {batch.shape}, expected (B, "
                                f"{', '.join(map(str, expected))}).")
            seen += len(batch)
            if use_inception:
                f = self.inception(batch)
                stats = stats.update(f["pool3"])
                if self._keeps_inception_features():
                    pool3.append(f["pool3"])
                if "is" in s.metrics:
                    logits.append(f["logits"])
            if use_classifier:
                if "stacked_mnist" in s.metrics:
                    stacked.append(batch)
                if any(m in s.metrics for m in ("classifier_fd", "classifier_is", "class_histogram")):
                    lg, ft = self.classifier.logits_and_features(batch)
                    cls_logits.append(lg)
                    cls_feats.append(ft)
            if seen >= s.num_samples:
                break
        if seen < s.num_samples:
            raise EvalError(f"The sampler gave {seen} images, eval.num_samples is {s.num_samples}.")
        results = {}
        needs_real = any(m in _NEEDS_REAL for m in s.metrics)
        reference = self._reference_protocol() if needs_real else {}
        common = dict(num_generated=seen, resize_method=s.resize_method)
        if use_inception:
            real = self.real_inception()
            inception_protocol = dict(common, **reference,
                                      weights_sha256=self._weights_sha,
                                      resolution=s.resolution, features="inception_pool3")
            if "fid" in s.metrics:
                results["fid"] = {"value": fid(stats, real["stats"], method="eigh"),
                                  "protocol": protocol_record(metric="fid", sqrt_method="eigh",
                                                             **inception_protocol)}
            fake = np.concatenate(pool3) if pool3 else None
            if "kid" in s.metrics:
                kid = kernel_inception_distance(fake, real["features"], num_subsets=s.kid_subsets,
                                                subset_size=s.kid_subset_size)
                results["kid"] = {**kid, "protocol": protocol_record(metric="kid", **inception_protocol)}
            if "pr" in s.metrics:
                pr = prdc(real["features"], fake, k_pr=s.pr_k, k_dc=s.dc_k)
                results["pr"] = {**pr, "protocol": protocol_record(
                    metric="prdc", k_pr=s.pr_k, k_dc=s.dc_k, **inception_protocol)}
            if "is" in s.metrics:
                score = inception_score(np.concatenate(logits), num_splits=s.is_splits)
                results["is"] = {**score, "protocol": protocol_record(
                    metric="inception_score", num_real=None, reference="none",
                    weights_sha256=self._weights_sha, **common)}
        if use_classifier:
            classifier_protocol = dict(common, resize_method="none", weights_sha256=None,
                                       classifier_workdir=str(Path(s.classifier_workdir).resolve()),
                                       classifier_step=self.classifier.step)
            lg = np.concatenate(cls_logits) if cls_logits else None
            if "classifier_fd" in s.metrics:
                value = classifier_lib.classifier_frechet_distance(
                    np.concatenate(cls_feats), self.real_classifier_features())
                results["classifier_fd"] = {"value": value, "protocol": protocol_record(
                    metric="classifier_fd", **reference, **classifier_protocol)}
            if "classifier_is" in s.metrics:
                results["classifier_is"] = {
                    **inception_score(lg, num_splits=s.is_splits),
                    "protocol": protocol_record(metric="classifier_is", num_real=None,
                                                reference="none", **classifier_protocol)}
            if "class_histogram" in s.metrics:
                results["class_histogram"] = {
                    **classifier_lib.class_histogram(lg, self.classifier.num_classes),
                    "protocol": protocol_record(metric="class_histogram", num_real=None,
                                                reference="none", **classifier_protocol)}
            if "stacked_mnist" in s.metrics:
                digits = lambda x: self.classifier.logits_and_features(x)[0]
                modes = stacked_mnist_modes(np.concatenate(stacked), digits)
                modes["protocol"].update(protocol_record(
                    metric="stacked_mnist", num_real=None, reference="none",
                    expected=STACKED_MNIST_SAMPLES, **classifier_protocol))
                results["stacked_mnist"] = modes
        self._log(f"Evaluated {', '.join(s.metrics)} on {seen} samples in {time.time() - t0:.0f} s.")
        return results


def scalar_summary(results: dict) -> dict:
    """The headline numbers of `Evaluator.evaluate`'s results, flat, for metrics.jsonl."""
    out = {}
    for metric, r in results.items():
        for field in ("value", "mean", "std", "precision", "recall", "density", "coverage",
                      "modes", "kl", "kl_to_uniform"):
            v = r.get(field)
            if isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool):
                name = f"eval/{metric}" if field == "value" else f"eval/{metric}_{field}"
                out[name] = float(v)
    return out
