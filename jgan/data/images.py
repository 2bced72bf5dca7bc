"""Image data sources and the grain input pipeline.

Two random-access sources (``len(src)`` and ``src[i]``), both yielding dicts
``{'image': uint8 (H, W, C), 'label': int}``:

* :func:`tfds_source` -- a prepared TensorFlow-Datasets dataset in
  ``array_record`` format, read through ``tfds.data_source`` (no TensorFlow, no
  download).
* :class:`ImageFolderSource` -- a user's folder of image files of any size,
  resized (shorter side) and centre-cropped to a square at a fixed resolution.

:func:`make_image_loader` turns either source into a deterministic, sharded,
checkpointable ``grain.python.DataLoader`` that yields batches
``{'image': float32 (B, R, R, C) in [-1, 1], 'label': int32 (B,)}``.

Resampling everywhere is PIL ``BICUBIC``.  Pillow's resampling filters widen
their support by the scale factor when downsampling, so bicubic is antialiased
on reduction (no aliasing) and a plain bicubic interpolator on enlargement.
"""

from __future__ import annotations

import concurrent.futures
import logging
import operator
import os
from pathlib import Path
from typing import Any

import grain.python as gp
import numpy as np
from PIL import Image, ImageOps

from jgan.data.global_order import GlobalBatchOrder
from jgan.errors import JganError

__all__ = [
    "DataError",
    "IMAGE_EXTENSIONS",
    "ImageFolderSource",
    "describe_missing_dataset",
    "make_image_loader",
    "RESIZE_MODES",
    "pad_to",
    "resize_center_crop",
    "tfds_source",
    "to_run_shape",
]

#: File extensions (lower case) that :class:`ImageFolderSource` picks up.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")

_RESAMPLE = Image.Resampling.BICUBIC


class _DropTFDSNotices(logging.Filter):
    """TFDS warns "OpenCV is not installed" on every run that decodes images, though PIL
    decodes them (jgan does not need OpenCV), and "Variant folder ... has no
    dataset_info.json" before jgan's own DataError says the same with the fix: both
    only alarm users."""

    DROPPED = ("OpenCV is not installed", "Variant folder %s has no %s")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.DROPPED)


# On import, so that grain's worker processes (which import this module to unpickle a
# source) drop it too.
logging.getLogger("absl").addFilter(_DropTFDSNotices())


class DataError(JganError, ValueError):
    """Raised for missing/unprepared datasets, unreadable files, bad shapes.

    The message names the dataset / file / key at fault and says what to do.
    """


# ---------------------------------------------------------------------------
# Shared image helpers
# ---------------------------------------------------------------------------


RESIZE_MODES = ("bicubic", "pad")


def pad_to(image: np.ndarray, resolution: int) -> np.ndarray:
    """Zero-pads a uint8 image (H, W[, C]) with H, W <= R to (R, R[, C]), centred (the
    extra pixel, if any, on the bottom / right): Fashion-MNIST's 28 px on a 32-px canvas.

    Raises:
      DataError: the image is larger than R on a side.
    """
    h, w = image.shape[:2]
    if h > resolution or w > resolution:
        raise DataError(f"data.resize='pad' cannot fit a {h}x{w} image into {resolution}x"
                        f"{resolution}; use data.resize='bicubic'.")
    top, left = (resolution - h) // 2, (resolution - w) // 2
    widths = [(top, resolution - h - top), (left, resolution - w - left)]
    return np.pad(image, widths + [(0, 0)] * (image.ndim - 2))


def resize_center_crop(image: np.ndarray, resolution: int, mode: str = "bicubic") -> np.ndarray:
    """Resize so the shorter side equals ``resolution``, then centre-crop
    (``mode="pad"``: zero-pad to ``resolution`` instead, see :func:`pad_to`).

    Args:
      image: uint8 array (H, W, C) with C in {1, 3}, or (H, W).
      resolution: output side length R.
      mode: "bicubic" or "pad".

    Returns:
      uint8 array (R, R, C) (or (R, R) for a 2-D input).  The longer side is
      scaled to ``round(long * R / short)`` (at least R) with PIL bicubic, and
      the crop offset is ``(new_long - R) // 2``.  Already-(R, R) images are
      returned unchanged.
    """
    h, w = image.shape[:2]
    if h == resolution and w == resolution:
        return image
    if mode == "pad":
        return pad_to(image, resolution)
    if mode != "bicubic":
        raise DataError(f"data.resize must be one of {RESIZE_MODES}, got {mode!r}.")
    squeeze = image.ndim == 3 and image.shape[2] == 1
    pil = Image.fromarray(image[..., 0] if squeeze else image)
    pil = _resize_center_crop_pil(pil, resolution)
    out = np.asarray(pil, dtype=np.uint8)
    return out[..., None] if squeeze else out


def to_run_shape(image: np.ndarray, resolution: int, channels: int,
                 resize: str = "bicubic") -> np.ndarray:
    """A uint8 image (H, W[, C]) as a run's data: (R, R, channels) uint8.

    Resized with :func:`resize_center_crop` (``resize``: "bicubic" or "pad", a run's
    ``data.resize``) when (H, W) != (R, R); then 1 channel -> 3 by repeating, 3 -> 1 by
    averaging (rounded), as the reference images of ``jgan.eval.suite`` are made.
    """
    if image.shape[:2] != (resolution, resolution):
        image = resize_center_crop(image, resolution, resize)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] != channels:
        image = (np.repeat(image, channels, -1) if image.shape[-1] == 1 else
                 np.round(image.astype(np.float32).mean(-1, keepdims=True)).astype(np.uint8))
    return image


def _resize_center_crop_pil(pil: Image.Image, resolution: int) -> Image.Image:
    w, h = pil.size
    if (w, h) != (resolution, resolution):
        if w <= h:
            new_w, new_h = resolution, max(resolution, round(h * resolution / w))
        else:
            new_w, new_h = max(resolution, round(w * resolution / h)), resolution
        if (new_w, new_h) != (w, h):
            pil = pil.resize((new_w, new_h), resample=_RESAMPLE)
        left = (new_w - resolution) // 2
        top = (new_h - resolution) // 2
        if (new_w, new_h) != (resolution, resolution):
            pil = pil.crop((left, top, left + resolution, top + resolution))
    return pil


# ---------------------------------------------------------------------------
# TFDS
# ---------------------------------------------------------------------------


def _dataset_dir_name(name: str) -> str:
    """'mnist:3.0.1' -> 'mnist', 'cifar10/config' -> 'cifar10/config'."""
    return name.split(":", 1)[0]


def describe_missing_dataset(name: str, data_dir: str | os.PathLike | None) -> str:
    """Human-readable explanation of how to provide TFDS dataset ``name``.

    Args:
      name: TFDS name as passed to :func:`tfds_source` (``'mnist'``,
        ``'mnist:3.0.1'``, ...).
      data_dir: the TFDS data directory that was searched (``None`` means the
        TFDS default: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).

    Returns:
      Two lines: the dataset, the directory searched and the versions found on disk
      (if any); then the two ways to fix it.
    """
    if data_dir is None:
        searched = os.environ.get("TFDS_DATA_DIR") or os.path.join(
            "~", "tensorflow_datasets"
        )
        searched = f"{os.path.expanduser(searched)} (TFDS default: $TFDS_DATA_DIR or ~/tensorflow_datasets)"
        root = None
    else:
        root = Path(data_dir).expanduser()
        searched = str(root)
    base = _dataset_dir_name(name)
    found = ""
    if root is not None:
        ds_dir = root / base
        if ds_dir.is_dir():
            versions = sorted(p.name for p in ds_dir.iterdir() if p.is_dir())
            found = (
                f" (found {ds_dir} with version folder(s) {versions or 'none'}, but no "
                "complete copy: it needs dataset_info.json, features.json and the "
                "*.array_record-* files)"
            )
        elif not root.is_dir():
            found = " (the folder does not exist)"
    return (
        f"TFDS dataset '{name}' is not prepared under data_dir {searched}{found}.\n"
        f"Fix: point data_dir (or TFDS_DATA_DIR) at a folder holding a prepared "
        f"'{base}/VERSION/', or prepare one on a machine with network access: "
        f"tfds build {base} --data_dir=DIR --file_format=array_record (jgan never downloads)."
    )


def tfds_source(name: str, *, split: str, data_dir: str | None = None):
    """Random-access source via ``tfds.data_source`` (array_record). No TensorFlow needed.

    Args:
      name: TFDS dataset name, optionally with config/version
        (``'mnist'``, ``'fashion_mnist:3.0.1'``).
      split: TFDS split string (``'train'``, ``'test'``, ``'train[:90%]'``, ...).
      data_dir: directory holding ``NAME/VERSION/``; ``None`` uses the TFDS
        default (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).

    Returns:
      A sequence-like source: ``len(src)`` examples, ``src[i]`` ->
      ``{'image': uint8 (H, W, C), 'label': int, ...}`` (MNIST: (28, 28, 1)).
      Picklable, so it works with grain worker processes.

    Raises:
      DataError: the dataset is unknown, not prepared under ``data_dir`` (the
        message from :func:`describe_missing_dataset` says how to fix it),
        prepared in a non-random-access format (e.g. tfrecord), or the split
        does not exist.  Nothing is ever downloaded.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise DataError(
            f"tfds_source('{name}') needs tensorflow-datasets: pip install "
            "tensorflow-datasets array_record importlib_resources"
        ) from e

    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise DataError(describe_missing_dataset(name, data_dir))  # before TFDS warns
    try:
        builder = tfds.builder(name, data_dir=data_dir, try_gcs=False)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(
            f"Unknown TFDS dataset name '{name}' (data_dir={data_dir}). Check the "
            "spelling against https://www.tensorflow.org/datasets/catalog, or "
            "prepare it as described:\n" + describe_missing_dataset(name, data_dir)
        ) from None
    except (AssertionError, ValueError) as e:
        # e.g. a version that the installed TFDS code does not know about.
        raise DataError(
            f"Could not construct TFDS builder for '{name}' (data_dir={data_dir}): {e}\n"
            + describe_missing_dataset(name, data_dir)
        ) from e

    if not builder.is_prepared():
        raise DataError(describe_missing_dataset(name, data_dir))

    try:
        return tfds.data_source(
            name,
            split=split,
            data_dir=data_dir,
            download=False,
            try_gcs=False,
        )
    except NotImplementedError as e:
        base = _dataset_dir_name(name)
        raise DataError(
            f"TFDS dataset '{name}' at {builder.data_dir} is prepared in format "
            f"{builder.info.file_format}, which has no random access. Re-prepare it "
            f"with `tfds build {base} --file_format=array_record` (or delete that "
            f"folder and copy in an array_record copy). Original error: {e}"
        ) from e
    except ImportError as e:
        raise DataError(
            f"Reading TFDS dataset '{name}' needs the packages array_record and "
            f"importlib_resources: pip install array_record importlib_resources ({e})"
        ) from e
    except (ValueError, KeyError) as e:
        splits = sorted(builder.info.splits.keys())
        raise DataError(
            f"Bad split {split!r} for TFDS dataset '{name}' at {builder.data_dir}: "
            f"{str(e).rstrip('.')}. Available splits: {splits}."
        ) from e


# ---------------------------------------------------------------------------
# Image folder
# ---------------------------------------------------------------------------


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _list_images(root: Path) -> list[Path]:
    """All image files under root (recursive, following symlinks, no hidden
    files/dirs), sorted by their path relative to root (POSIX string)."""
    files: list[Path] = []
    seen_dirs: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:  # symlink loop
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames[:] = [d for d in dirnames if not _is_hidden(d)]
        for f in filenames:
            if not _is_hidden(f) and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS:
                files.append(Path(dirpath) / f)
    files.sort(key=lambda p: p.relative_to(root).as_posix())
    return files


def _to_mode(pil: Image.Image, channels: int) -> Image.Image:
    """Convert any PIL image to 'L' (channels=1) or 'RGB' (channels=3).

    16-bit / 32-bit integer grayscale is scaled to 8 bits (>> 8 for 16-bit
    data) rather than clipped; alpha is dropped (like StyleGAN's dataset_tool).
    """
    if pil.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(pil).astype(np.int64)
        arr = np.clip(arr >> 8, 0, 255).astype(np.uint8)
        pil = Image.fromarray(arr, mode="L")
    elif pil.mode == "F":
        arr = np.asarray(pil, dtype=np.float32)
        hi = 1.0 if arr.size and float(arr.max()) <= 1.0 else 255.0
        pil = Image.fromarray(np.clip(np.rint(arr * (255.0 / hi)), 0, 255).astype(np.uint8))
    target = "L" if channels == 1 else "RGB"
    if pil.mode == "P" and "transparency" in pil.info:
        pil = pil.convert("RGBA")  # avoids PIL's palette-transparency warning
    if pil.mode != target:
        pil = pil.convert(target)
    return pil


def _check_readable(path: Path) -> str | None:
    """Fully decode ``path`` once; returns an error description or None.

    JPEGs are decoded with ``draft`` (DCT-domain downscaling), which still
    consumes the whole entropy-coded stream -- truncation is detected -- at a
    fraction of the cost of a full-resolution decode.
    """
    try:
        with Image.open(path) as im:
            if im.format == "JPEG":
                im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
        return None
    except Exception as e:  # noqa: BLE001 - any decoder failure means "corrupt"
        return f"{type(e).__name__}: {e}"


class ImageFolderSource:
    """Random-access source over a user's folder of images.

    Files are found recursively (extensions ``.png .jpg .jpeg .bmp .gif
    .webp``, case-insensitive; hidden files and folders -- names starting with
    ``'.'`` such as macOS ``._x.jpg`` -- are ignored; symlinked folders are
    followed), in any size, and listed sorted by relative path, so the index ->
    file mapping is deterministic.

    Each item is ``{'image': uint8 (resolution, resolution, channels),
    'label': int32}``.  The label is 0, or with ``class_subfolders=True`` the
    index of the file's first-level subfolder in ``self.classes`` (sorted
    names of the non-hidden first-level subfolders that contain at least one
    image file).

    Preprocessing per item: apply the EXIF orientation, convert to ``'L'``
    (channels=1, ITU-R 601 luma) or ``'RGB'`` (channels=3; alpha is dropped,
    16-bit grayscale is scaled to 8 bits, animated GIFs use their first frame),
    resize with PIL **bicubic** (antialiased when downscaling) so the SHORTER
    side equals ``resolution`` (longer side ``round(long * res / short)``),
    then centre-crop to ``resolution x resolution`` (offset
    ``(new_long - res) // 2``).

    Validation cost: construction decodes every file once (JPEGs at 1/8 scale
    via ``draft``), in a thread pool, to find corrupt or truncated files up
    front -- roughly 1 ms per small image, about a minute for 70k 1024px JPEGs
    on a few cores.  A corrupt/unreadable file raises :class:`DataError` naming
    it, unless ``skip_corrupt=True``: then it is left out and its path is
    recorded in ``self.skipped`` (``self.num_skipped`` is its length).

    Args:
      root: folder to scan.
      resolution: output side length R (> 0).
      channels: 1 or 3.
      skip_corrupt: skip (and record) unreadable files instead of raising.
      class_subfolders: derive labels from first-level subfolder names.

    Raises:
      DataError: ``root`` missing / not a folder / containing no images (after
        skipping), a corrupt file (without ``skip_corrupt``), an image directly
        in ``root`` when ``class_subfolders=True``, or bad arguments.
    """

    def __init__(
        self,
        root,
        *,
        resolution: int,
        channels: int = 3,
        skip_corrupt: bool = False,
        class_subfolders: bool = False,
    ):
        if not isinstance(resolution, (int, np.integer)) or resolution <= 0:
            raise DataError(f"ImageFolderSource: resolution must be a positive int, got {resolution!r}")
        if channels not in (1, 3):
            raise DataError(f"ImageFolderSource: channels must be 1 or 3, got {channels!r}")
        self.root = Path(root).expanduser()
        self.resolution = int(resolution)
        self.channels = int(channels)
        self.class_subfolders = bool(class_subfolders)
        if not self.root.exists():
            raise DataError(f"Image folder {self.root} does not exist; check the data path in your config.")
        if not self.root.is_dir():
            raise DataError(f"Image folder path {self.root} is not a directory.")

        files = _list_images(self.root)
        if not files:
            raise DataError(
                f"Image folder {self.root} contains no image files "
                f"(looked recursively for {', '.join(IMAGE_EXTENSIONS)})."
            )

        # Labels (decided before corruption checks so class indices do not
        # depend on which files happen to be broken).
        self.classes: list[str] = []
        labels = [0] * len(files)
        if self.class_subfolders:
            first = []
            for f in files:
                parts = f.relative_to(self.root).parts
                if len(parts) < 2:
                    raise DataError(
                        f"class_subfolders=True but image {f} lies directly in {self.root}; "
                        "move every image into a class subfolder (root/CLASS/...), or set "
                        "class_subfolders=False."
                    )
                first.append(parts[0])
            self.classes = sorted(set(first))
            index = {c: i for i, c in enumerate(self.classes)}
            labels = [index[c] for c in first]

        # Validate every file (threads: PIL releases the GIL while decoding).
        workers = min(32, (os.cpu_count() or 1) + 4)
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            errors = list(pool.map(_check_readable, files))
        self.skipped: list[str] = []
        keep_files, keep_labels = [], []
        for f, lab, err in zip(files, labels, errors):
            if err is None:
                keep_files.append(f)
                keep_labels.append(lab)
            elif skip_corrupt:
                self.skipped.append(str(f))
            else:
                raise DataError(
                    f"Cannot read image file {f} ({err}). Delete or fix it, or set "
                    "skip_corrupt=True in the data config to skip unreadable files."
                )
        if not keep_files:
            raise DataError(
                f"Image folder {self.root}: all {len(files)} image files are unreadable "
                f"(skipped: {self.skipped[:5]}{' ...' if len(self.skipped) > 5 else ''})."
            )
        self.files: list[str] = [str(f) for f in keep_files]
        self.labels = np.asarray(keep_labels, dtype=np.int32)

    @property
    def num_skipped(self) -> int:
        """Number of unreadable files left out (``len(self.skipped)``)."""
        return len(self.skipped)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        """Returns ``{'image': uint8 (R, R, C), 'label': np.int32}``.

        Raises IndexError when out of range, DataError naming the file when it
        cannot be decoded (e.g. it changed on disk after construction).
        """
        i = operator.index(index)
        n = len(self.files)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"ImageFolderSource index {index} out of range [0, {n})")
        path = self.files[i]
        try:
            with Image.open(path) as im:
                im.load()
                im = ImageOps.exif_transpose(im)
                im = _to_mode(im, self.channels)
                im = _resize_center_crop_pil(im, self.resolution)
                arr = np.asarray(im, dtype=np.uint8)
        except Exception as e:  # noqa: BLE001
            raise DataError(
                f"Cannot decode image file {path} ({type(e).__name__}: {e}). Delete or "
                "fix it (construct with skip_corrupt=True to skip files unreadable at "
                "start-up)."
            ) from e
        if arr.ndim == 2:
            arr = arr[..., None]
        return {"image": arr, "label": self.labels[i]}

    def __repr__(self) -> str:
        return (
            f"ImageFolderSource(root={str(self.root)!r}, len={len(self)}, "
            f"resolution={self.resolution}, channels={self.channels}, "
            f"classes={len(self.classes)}, skipped={self.num_skipped})"
        )


# ---------------------------------------------------------------------------
# grain pipeline
# ---------------------------------------------------------------------------


def _ensure_absl_flags_parsed() -> None:
    """grain 0.2.x worker processes read an absl flag and raise
    UnparsedFlagAccessError in scripts that don't use ``absl.app``
    (google/grain#1355); mark flags as parsed (keeping defaults) in that case."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


class _MapOp(gp.MapTransform):
    """Picklable grain MapTransform wrapping a (picklable) callable."""

    def __init__(self, fn):
        self.fn = fn

    def map(self, element: Any) -> Any:
        return self.fn(element)


class _PrepareExample:
    """grain MapTransform body: raw record -> {'image': f32 (R,R,C) in [-1,1], 'label': i32}.

    Image conversion: (H, W) -> (H, W, 1); 4 channels (RGBA) -> first 3;
    2 channels (LA) -> first 1; resize (shorter side) + centre-crop to R with
    PIL bicubic on the uint8 image if (H, W) != (R, R); then channels 1 -> 3 by
    repeating, 3 -> 1 by averaging (in float32); finally x / 127.5 - 1.
    Records without 'label' get label 0.
    """

    def __init__(self, resolution: int, channels: int, resize: str = "bicubic"):
        self.resolution = resolution
        self.channels = channels
        self.resize = resize

    def __call__(self, record: dict) -> dict:
        if not isinstance(record, dict) or "image" not in record:
            keys = list(record.keys()) if isinstance(record, dict) else type(record).__name__
            raise DataError(f"Data source record has no 'image' key (got {keys}).")
        img = np.asarray(record["image"])
        if img.dtype != np.uint8:
            raise DataError(
                f"Data source key 'image' must be uint8 (H, W, C), got dtype {img.dtype} "
                f"shape {img.shape}."
            )
        if img.ndim == 2:
            img = img[..., None]
        if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4) or min(img.shape[:2]) < 1:
            raise DataError(
                f"Data source key 'image' must have shape (H, W, C) with C in 1..4, got {img.shape}."
            )
        c = img.shape[2]
        if c == 4:
            img = img[..., :3]
        elif c == 2:
            img = img[..., :1]
        img = resize_center_crop(np.ascontiguousarray(img), self.resolution,
                                 getattr(self, "resize", "bicubic"))
        x = img.astype(np.float32)
        if x.shape[2] != self.channels:
            if self.channels == 3:
                x = np.repeat(x, 3, axis=2)
            else:
                x = x.mean(axis=2, keepdims=True, dtype=np.float32)
        x = x / np.float32(127.5) - np.float32(1.0)
        label = np.asarray(record.get("label", 0)).astype(np.int32).reshape(())
        out = {"image": x, "label": label}
        if "attributes" in record:  # multi-attribute labels (StarGAN), float32 [A]
            out["attributes"] = np.asarray(record["attributes"], np.float32).reshape(-1)
        return out


class _Positions:
    """grain data source of the record positions themselves (`[i] -> i`).

    Lets the pipeline batch positions first and read each batch's records in one
    `__getitems__` call (`_ReadBatch`)."""

    def __init__(self, source):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> int:
        return int(index)

    def __repr__(self) -> str:  # grain writes it into the iterator's state
        return f"positions of {self.source!r}"


class _ReadBatch(gp.MapTransform):
    """grain MapTransform: `[B]` record positions -> the prepared batch.

    The records come from one `source.__getitems__` call. For a TFDS array_record
    source that is a parallel read of the batch, ~3x cheaper per record than one
    `source[i]` each, and grain's per-record reading threads, each holding its own
    future that grain polls on every record, are not needed: on a 2-core CPU they took
    ~50 ms of CPU per batch of 64 MNIST digits (now ~11 ms)."""

    def __init__(self, source, prepare: _PrepareExample):
        self.source = source
        self.prepare = prepare

    def map(self, positions: np.ndarray) -> dict:
        records = self.source.__getitems__([int(i) for i in positions])
        examples = [self.prepare(r) for r in records]
        return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


def make_image_loader(
    source,
    *,
    global_batch_size: int,
    resolution: int,
    channels: int,
    seed: int,
    shard_index: int = 0,
    shard_count: int = 1,
    num_epochs: int | None = None,
    worker_count: int = 0,
    resize: str = "bicubic",
    start_batch: int = 0,
):
    """Deterministic, sharded grain loader over an image source, from any position.

    Builds a ``grain.python.DataLoader`` over one record order for every process
    count (``IndexSampler(len(source), shuffle=True, num_epochs, seed)``, unsharded),
    read through :class:`jgan.data.global_order.GlobalBatchOrder`, with
    ``ShardOptions(shard_index, shard_count)`` on the loader, a per-example map (see
    below) and ``Batch(global_batch_size // shard_count, drop_remainder=True)``.

    Each batch is this host's share (B = global_batch_size // shard_count):
      ``{'image': float32 (B, resolution, resolution, channels) in [-1, 1]
      (x / 127.5 - 1), 'label': int32 (B,)}``, rows ``[shard_index B, (shard_index
      + 1) B)`` of the global batch, which is the same for every shard_count.

    Per-example conversion: images whose size differs from ``resolution`` are
    resized with PIL bicubic (shorter side -> resolution, then centre-crop; e.g.
    MNIST 28x28 -> 32x32 is a plain bicubic upscale, not padding); channels
    are converted 1 -> 3 by repeating and 3 -> 1 by averaging (alpha dropped).

    With ``num_epochs=None`` the data repeat forever (reshuffled every epoch;
    batches may straddle epochs).  Same arguments -> same batches; the position
    is the number of global batches consumed: a loader made with
    ``start_batch=n`` yields global batch n first, on any shard or worker count.

    Args:
      source: random-access source (``len`` + ``__getitem__``) of dicts with
        'image' uint8 (H, W, C) (and optionally 'label').
      global_batch_size: batch size summed over all shards.
      resolution: output side length R.
      channels: 1 or 3.
      seed: shuffle seed, 0 <= seed < 2**32.
      shard_index, shard_count: this host's shard (e.g. jax.process_index(),
        jax.process_count()).
      num_epochs: number of passes, or None for infinite.
      resize: "bicubic" (resize + crop) or "pad" (zero-pad smaller images).
      start_batch: global batches to skip (the position a run resumes at).
      worker_count: grain worker processes (0 = in-process).  When > 0 and
        absl flags are unparsed (script not run via ``absl.app``), they are
        marked parsed with their defaults (works around google/grain#1355).

    Raises:
      DataError: global_batch_size not divisible by shard_count, or other bad
        arguments / empty source.
    """
    if global_batch_size <= 0:
        raise DataError(f"global_batch_size must be positive, got {global_batch_size}")
    if shard_count <= 0 or not 0 <= shard_index < shard_count:
        raise DataError(
            f"Need 0 <= shard_index < shard_count, got shard_index={shard_index}, "
            f"shard_count={shard_count}"
        )
    if global_batch_size % shard_count:
        raise DataError(
            f"global_batch_size={global_batch_size} is not divisible by "
            f"shard_count={shard_count} (number of data shards / hosts); choose a "
            "global batch size that is a multiple of the number of hosts."
        )
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels!r}")
    if not isinstance(resolution, (int, np.integer)) or resolution <= 0:
        raise DataError(f"resolution must be a positive int, got {resolution!r}")
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise DataError(f"seed must be an int in [0, 2**32), got {seed!r}")
    if num_epochs is not None and num_epochs <= 0:
        raise DataError(f"num_epochs must be positive or None, got {num_epochs}")
    n = len(source)
    if n < shard_count:
        raise DataError(
            f"Data source has {n} examples, fewer than shard_count={shard_count}."
        )
    per_host = global_batch_size // shard_count
    if worker_count is None or worker_count > 0:
        _ensure_absl_flags_parsed()

    shard_options = gp.ShardOptions(
        shard_index=int(shard_index), shard_count=int(shard_count), drop_remainder=True
    )
    sampler = GlobalBatchOrder(
        gp.IndexSampler(num_records=n, shard_options=gp.NoSharding(), shuffle=True,
                        num_epochs=num_epochs, seed=int(seed)),
        global_batch_size=int(global_batch_size), shard_count=int(shard_count),
        worker_count=int(worker_count or 0), start_batch=int(start_batch))
    prepare = _PrepareExample(int(resolution), int(channels), resize)
    if hasattr(source, "__getitems__"):
        # Same positions, same records, same batches as the per-record path below.
        return gp.DataLoader(
            data_source=_Positions(source),
            sampler=sampler,
            operations=[gp.Batch(batch_size=per_host, drop_remainder=True),
                        _ReadBatch(source, prepare)],
            worker_count=worker_count,
            shard_options=shard_options,
            read_options=gp.ReadOptions(num_threads=0, prefetch_buffer_size=0),
        )
    # Sources read one record at a time (image folders: decode and resize per file)
    # keep grain's reading threads.
    operations = [
        _MapOp(prepare),
        gp.Batch(batch_size=per_host, drop_remainder=True),
    ]
    return gp.DataLoader(
        data_source=source,
        sampler=sampler,
        operations=operations,
        worker_count=worker_count,
        shard_options=shard_options,
    )
