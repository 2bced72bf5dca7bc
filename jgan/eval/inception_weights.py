"""The FID Inception-v3 weights: where they are, fetching them once, reading them safely.

:func:`load_inception_weights` looks, in this order, at

1. an explicit ``path``;
2. the environment variable ``JGAN_INCEPTION_WEIGHTS``;
3. the cache, ``$JGAN_CACHE_DIR`` or ``~/.cache/jgan``, for ``pt_inception-2015-12-05-
   6726825d.pth`` (pytorch-fid's published port of the 2015-12-05 TensorFlow graph,
   with the 1008-way classifier the Inception Score needs);
4. otherwise it downloads that file once from pytorch-fid's release into the cache,
   checking its sha256 (:data:`FID_WEIGHTS_SHA256`), writing it atomically.

Files are state dicts with pytorch-fid's names and PyTorch layouts, as either

* ``.npz`` (``np.load(allow_pickle=False)``), e.g. ``../shared/data/fid/``, or
* a PyTorch ``torch.save`` file, zip (torch >= 1.6) or legacy, read **without torch and
  without executing pickled code**: the unpickler resolves only the few globals a plain
  state dict of tensors needs, each mapped to our own numpy-building code, and refuses
  anything else.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import io
import os
import pickle
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from jgan.errors import JganError, MissingFileError
from jgan.eval.inception import params_from_torch_state

__all__ = [
    "CACHE_DIR_ENV",
    "FID_WEIGHTS_FILENAME",
    "FID_WEIGHTS_SHA256",
    "FID_WEIGHTS_URL",
    "WEIGHTS_ENV",
    "InceptionWeights",
    "InceptionWeightsError",
    "default_cache_dir",
    "fetch_file",
    "load_inception_weights",
    "read_state_dict",
    "read_torch_state_dict",
]

WEIGHTS_ENV = "JGAN_INCEPTION_WEIGHTS"
CACHE_DIR_ENV = "JGAN_CACHE_DIR"
OFFLINE_ENV = "JGAN_OFFLINE"
FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   + FID_WEIGHTS_FILENAME)
#: sha256 of the published file (95,628,359 bytes); its first 8 hex digits are the
#: ``6726825d`` in the name, as torch.hub names files.
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"


class InceptionWeightsError(JganError, RuntimeError):
    """The weights could not be obtained: offline, download failed, or a bad checksum.

    The message says which file to download from where and where to put it.
    """


@dataclasses.dataclass(frozen=True)
class InceptionWeights:
    """Parameters of :class:`jgan.eval.inception.InceptionV3` and where they came from.

    Attributes:
      params: the Flax parameter tree (float32 numpy arrays), batch norm folded.
      sha256: hex sha256 of the file read.
      path: the file read.
      has_logits: whether ``params`` hold the 1008-way classifier (needed for IS).
    """

    params: dict
    sha256: str
    path: str
    has_logits: bool


def default_cache_dir() -> Path:
    """``$JGAN_CACHE_DIR``, else ``~/.cache/jgan``."""
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "jgan")


def load_inception_weights(path: str | None = None, *, download: bool = True,
                           url: str = FID_WEIGHTS_URL) -> InceptionWeights:
    """Finds, (once) downloads, verifies and reads the FID Inception-v3 weights.

    Args:
      path: a weights file (.pth or .npz with pytorch-fid's names); taken as is, its
        sha256 is recorded, not checked.
      download: allow step 4 (see the module docstring); False raises instead, and so
        does a set ``$JGAN_OFFLINE`` (the test suite sets it: tests never download).
      url: where step 4 downloads from (e.g. a mirror); the file's sha256 must still
        be :data:`FID_WEIGHTS_SHA256`.
    Returns:
      :class:`InceptionWeights`.
    Raises:
      MissingFileError: ``path`` or ``$JGAN_INCEPTION_WEIGHTS`` names no file.
      InceptionWeightsError: nothing local and the download is off or failed, or the
        cached/downloaded file fails its sha256 check.
      ValueError: the file is not a readable state dict of this network.
    """
    if path is None and os.environ.get(WEIGHTS_ENV):
        path = os.environ[WEIGHTS_ENV]
        if not Path(path).is_file():
            raise MissingFileError(f"{WEIGHTS_ENV}={path!r} names no file.")
    if path is not None:
        if not Path(path).is_file():
            raise MissingFileError(f"Inception weights file not found: {path!r}.")
        return _read_weights(Path(path), expected_sha256=None)

    cached = default_cache_dir() / FID_WEIGHTS_FILENAME
    download = download and not os.environ.get(OFFLINE_ENV)
    if not cached.is_file():
        if not download:
            raise InceptionWeightsError(_how_to_get_weights(cached, url, "downloading is off"))
        try:
            fetch_file(url, cached, FID_WEIGHTS_SHA256)
        except (OSError, ValueError) as err:
            raise InceptionWeightsError(_how_to_get_weights(cached, url, str(err))) from err
    return _read_weights(cached, expected_sha256=FID_WEIGHTS_SHA256)


def _how_to_get_weights(destination: Path, url: str, reason: str) -> str:
    return (f"The FID Inception-v3 weights are not available ({reason}). Download\n  {url}\n"
            f"(sha256 {FID_WEIGHTS_SHA256}) and put it at\n  {destination}\nor set "
            f"{WEIGHTS_ENV} to a copy of it (or to an .npz of the same state dict), or "
            f"{CACHE_DIR_ENV} to the folder that holds {FID_WEIGHTS_FILENAME}.")


def fetch_file(url: str, destination: str | Path, sha256: str, *, timeout: float = 60.0) -> None:
    """Downloads ``url`` to ``destination`` if its sha256 is ``sha256``; atomic.

    The bytes go to a temporary file in the destination's folder, are hashed on the way
    and renamed into place only when the hash matches, so a failed or interrupted
    download never leaves a partial file under the final name.

    Raises:
      OSError (``urllib.error.URLError`` included): the download failed.
      ValueError: the downloaded bytes have another sha256 (nothing is written).
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    print(f"Downloading {url} to {destination}", file=sys.stderr)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=destination.name + ".", suffix=".part",
                               dir=destination.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as src:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise ValueError(f"{url} has sha256 {digest.hexdigest()}, expected {sha256}.")
        os.replace(tmp, destination)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read_weights(path: Path, expected_sha256: str | None) -> InceptionWeights:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise InceptionWeightsError(
            f"{path} has sha256 {digest}, expected {expected_sha256}: a corrupt or "
            f"different file. Delete it to download it again.")
    try:
        params = params_from_torch_state(read_state_dict(data, name=str(path)))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    return InceptionWeights(params=params, sha256=digest, path=str(path),
                            has_logits="fc" in params)


def read_state_dict(data: bytes, name: str = "<bytes>") -> dict[str, np.ndarray]:
    """name -> numpy array from the bytes of an ``.npz`` or a ``torch.save`` file.

    Raises:
      ValueError: neither format, or (torch files) anything but a plain state dict.
    """
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
        if any(n.endswith("data.pkl") for n in names):
            return read_torch_state_dict(data, name)
        if names and all(n.endswith(".npy") for n in names):
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                return {key: npz[key] for key in npz.files}
    elif data[:1] == b"\x80":
        return read_torch_state_dict(data, name)
    raise ValueError(f"{name}: neither an .npz nor a PyTorch torch.save file.")


# --------------------------------------------------------------------------- torch files

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
# torch.save's legacy (pre-zip) header: a magic number, then a format version.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


@dataclasses.dataclass
class _Storage:
    """A torch storage: its dtype, element count and (once read) flat data."""

    dtype: np.dtype
    numel: int
    array: np.ndarray | None = None


@dataclasses.dataclass
class _StorageView:
    """A legacy-format view into another storage (elements [offset, offset + numel))."""

    base: _Storage
    offset: int
    numel: int

    @property
    def array(self) -> np.ndarray:
        return self.base.array[self.offset:self.offset + self.numel]


@dataclasses.dataclass
class _TensorRef:
    """What ``torch._utils._rebuild_tensor_v2`` would build, made once data is read."""

    storage: Any
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def materialize(self, name: str) -> np.ndarray:
        flat = self.storage.array
        if any(s == 0 for s in self.size):
            return np.zeros(self.size, flat.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if self.offset < 0 or min(self.stride, default=0) < 0 or last >= flat.size:
            raise ValueError(f"tensor {name!r} (size {self.size}, stride {self.stride}, "
                             f"offset {self.offset}) lies outside its storage of {flat.size}.")
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size,
            strides=[s * flat.itemsize for s in self.stride], writeable=False)
        return np.array(view, dtype=flat.dtype.newbyteorder("="))


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False,
                    backward_hooks=None, metadata=None):
    del requires_grad, backward_hooks, metadata
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    del requires_grad, backward_hooks
    return data


class _StorageType:
    """Stands for ``torch.FloatStorage`` etc. in a persistent id."""

    def __init__(self, name: str):
        self.name, self.dtype = name, np.dtype(_STORAGE_DTYPES[name])


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a torch state dict into placeholders; refuses every other global."""

    def __init__(self, file, name: str, storages: dict[str, Any]):
        super().__init__(file)
        self._name, self._storages = name, storages

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(
            f"{self._name}: refusing to load the global {module}.{name}; only plain state "
            f"dicts of tensors ({sorted(_STORAGE_DTYPES)}) are read.")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] in ("storage", b"storage")):
            raise pickle.UnpicklingError(f"{self._name}: unsupported persistent id {pid!r:.80}.")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"{self._name}: bad storage type in {pid!r:.80}.")
        key = key.decode() if isinstance(key, bytes) else str(key)
        storage = self._storages.setdefault(key, _Storage(storage_type.dtype, int(numel)))
        view = pid[5] if len(pid) > 5 else None
        if view is None:
            return storage
        view_key, offset, view_numel = view
        return self._storages.setdefault(str(view_key), _StorageView(storage, offset, view_numel))


def read_torch_state_dict(data: bytes, name: str = "<bytes>") -> dict[str, np.ndarray]:
    """name -> numpy array from a ``torch.save``d state dict, without torch or pickled code.

    Reads both the zip format (``<archive>/data.pkl`` + ``<archive>/data/<key>``) and the
    legacy stream (magic, version, system info, the pickle, storage keys, then each
    storage as an int64 element count and raw bytes).

    Raises:
      ValueError: not a torch file, a global other than a state dict's, or truncated data.
    """
    storages: dict[str, Any] = {}
    try:
        if data[:4] == b"PK\x03\x04":
            result = _read_zip(data, name, storages)
        else:
            result = _read_legacy(data, name, storages)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, IndexError,
            zipfile.BadZipFile) as err:
        raise ValueError(f"{name}: not a readable PyTorch state dict ({err}).") from err
    if not isinstance(result, dict) or not all(
            isinstance(k, str) and isinstance(v, _TensorRef) for k, v in result.items()):
        raise ValueError(f"{name}: holds a {type(result).__name__}, not a state dict "
                         f"(name -> tensor).")
    return {key: ref.materialize(key) for key, ref in result.items()}


def _read_zip(data: bytes, name: str, storages: dict) -> Any:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise ValueError(f"{name}: expected one data.pkl in the archive, found {pickles}.")
        prefix = pickles[0][:-len("data.pkl")]
        result = _StateDictUnpickler(io.BytesIO(archive.read(pickles[0])), name, storages).load()
        big_endian = (prefix + "byteorder" in archive.namelist()
                      and archive.read(prefix + "byteorder").strip() == b"big")
        for key, storage in storages.items():
            if isinstance(storage, _Storage):
                raw = archive.read(f"{prefix}data/{key}")
                storage.array = _from_raw(raw, storage, big_endian, f"{name}: storage {key}")
    return result


def _read_legacy(data: bytes, name: str, storages: dict) -> Any:
    stream = io.BytesIO(data)

    def next_pickle():
        return _StateDictUnpickler(stream, name, storages).load()

    if next_pickle() != _LEGACY_MAGIC:
        raise ValueError(f"{name}: not a torch.save file (bad magic number).")
    if next_pickle() != _LEGACY_PROTOCOL:
        raise ValueError(f"{name}: unsupported legacy torch.save format version.")
    sys_info = next_pickle()
    big_endian = isinstance(sys_info, dict) and sys_info.get("little_endian") is False
    result = next_pickle()
    order = "big" if big_endian else "little"
    for key in next_pickle():
        storage = storages[str(key)]
        numel = int.from_bytes(stream.read(8), order, signed=True)
        raw = stream.read(numel * storage.dtype.itemsize)
        storage.array = _from_raw(raw, storage, big_endian, f"{name}: storage {key}", numel)
    return result


def _from_raw(raw: bytes, storage: _Storage, big_endian: bool, what: str,
              numel: int | None = None) -> np.ndarray:
    numel = storage.numel if numel is None else numel
    if len(raw) != numel * storage.dtype.itemsize or numel < storage.numel:
        raise ValueError(f"{what}: {len(raw)} bytes, expected {storage.numel} x "
                         f"{storage.dtype.itemsize} (truncated file?).")
    return np.frombuffer(raw, storage.dtype.newbyteorder(">" if big_endian else "<"))
