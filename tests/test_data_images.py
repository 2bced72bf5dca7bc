"""Tests for jgan.data.images (TFDS source, image-folder source, grain loader).

The TFDS tests read the prepared MNIST in ``<repo>/../shared/data/tfds`` and are
skipped when that folder is absent.  Nothing is ever downloaded.
"""

from __future__ import annotations

import io
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jgan.data.images import (
    DataError,
    ImageFolderSource,
    make_image_loader,
    resize_center_crop,
    tfds_source,
)

from tests.helpers import SHARED_TFDS as TFDS_DIR

_HAVE_MNIST = (TFDS_DIR / "mnist").is_dir()
needs_mnist = pytest.mark.skipif(
    not _HAVE_MNIST,
    reason=f"offline TFDS data not found at {TFDS_DIR} (expected prepared mnist there)",
)


@pytest.fixture(scope="module")
def mnist_test():
    return tfds_source("mnist", split="test", data_dir=str(TFDS_DIR))


class IndexLabelled:
    """First ``n`` records of a source, with label := index (to identify examples)."""

    def __init__(self, src, n):
        self.src, self.n = src, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"image": self.src[i]["image"], "label": i}

    def __repr__(self):  # grain validates repr(source) on set_state
        return f"IndexLabelled({self.src!r}, {self.n})"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# ---------------------------------------------------------------------------
# 1-2: tfds_source
# ---------------------------------------------------------------------------


@needs_mnist
def test_tfds_source_mnist(no_network):
    train = tfds_source("mnist", split="train", data_dir=str(TFDS_DIR))
    test = tfds_source("mnist", split="test", data_dir=str(TFDS_DIR))
    assert len(train) == 60000
    assert len(test) == 10000
    ex = train[0]
    assert ex["image"].shape == (28, 28, 1)
    assert ex["image"].dtype == np.uint8
    assert 0 <= int(ex["label"]) <= 9


@needs_mnist
def test_tfds_source_bad_split():
    with pytest.raises(DataError, match="valid"):
        tfds_source("mnist", split="valid", data_dir=str(TFDS_DIR))


def test_tfds_source_missing_dataset(tmp_path, no_network):
    t0 = time.perf_counter()
    with pytest.raises(DataError) as info:
        tfds_source("mnist", split="train", data_dir=str(tmp_path))
    msg = str(info.value)
    assert "mnist" in msg
    assert str(tmp_path) in msg
    assert "tfds build" in msg
    assert "TFDS_DATA_DIR" in msg
    assert time.perf_counter() - t0 < 10
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing downloaded


def test_tfds_source_unknown_name(tmp_path, no_network):
    with pytest.raises(DataError, match="no_such_dataset_xyz"):
        tfds_source("no_such_dataset_xyz", split="train", data_dir=str(tmp_path))


# ---------------------------------------------------------------------------
# 3, 5: make_image_loader
# ---------------------------------------------------------------------------


def _loader(src, **kw):
    args = dict(global_batch_size=8, resolution=28, channels=1, seed=7)
    args.update(kw)
    return make_image_loader(src, **args)


@needs_mnist
def test_loader_shapes_values_and_determinism(mnist_test):
    src = IndexLabelled(mnist_test, 2000)
    it = iter(_loader(src))
    batches = [next(it) for _ in range(3)]
    for b in batches:
        assert b["image"].shape == (8, 28, 28, 1) and b["image"].dtype == np.float32
        assert b["label"].shape == (8,) and b["label"].dtype == np.int32
        assert b["image"].min() >= -1.0 and b["image"].max() <= 1.0
        for img, idx in zip(b["image"], b["label"]):
            raw = mnist_test[int(idx)]["image"]
            np.testing.assert_array_equal(img, raw.astype(np.float32) / 127.5 - 1.0)
            assert img.min() == np.float32(raw.min()) / np.float32(127.5) - np.float32(1)
            assert img.max() == np.float32(raw.max()) / np.float32(127.5) - np.float32(1)
    # shuffled: not the identity order
    assert batches[0]["label"].tolist() != list(range(8))

    # same seed -> identical batches; different seed -> different
    b_again = next(iter(_loader(src)))
    np.testing.assert_array_equal(b_again["image"], batches[0]["image"])
    np.testing.assert_array_equal(b_again["label"], batches[0]["label"])
    b_other = next(iter(_loader(src, seed=8)))
    assert b_other["label"].tolist() != batches[0]["label"].tolist()


@needs_mnist
def test_loader_state_roundtrip(mnist_test):
    src = IndexLabelled(mnist_test, 2000)
    it = iter(_loader(src))
    k = 3
    for _ in range(k):
        next(it)
    state = it.get_state()
    expected = next(it)  # the (k+1)-th batch
    it2 = iter(_loader(src))
    it2.set_state(state)
    got = next(it2)
    np.testing.assert_array_equal(got["label"], expected["label"])
    np.testing.assert_array_equal(got["image"], expected["image"])


@needs_mnist
def test_loader_shards_disjoint(mnist_test):
    src = IndexLabelled(mnist_test, 100)
    seen = []
    for shard in range(2):
        ld = _loader(src, global_batch_size=16, shard_index=shard, shard_count=2, num_epochs=1)
        batches = list(ld)
        assert len(batches) == 50 // 8  # drop remainder
        for b in batches:
            assert b["image"].shape == (8, 28, 28, 1)
        labels = np.concatenate([b["label"] for b in batches]).tolist()
        assert len(set(labels)) == len(labels)
        seen.append(set(labels))
    assert not seen[0] & seen[1]


class BatchReadable(IndexLabelled):
    """IndexLabelled that also reads a list of positions at once, counting the calls."""

    def __init__(self, src, n):
        super().__init__(src, n)
        self.batch_reads, self.single_reads = [], 0

    def __getitem__(self, i):
        self.single_reads += 1
        return super().__getitem__(i)

    def __getitems__(self, positions):
        self.batch_reads.append(list(positions))
        return [IndexLabelled.__getitem__(self, i) for i in positions]


@needs_mnist
@pytest.mark.parametrize("shard_index", [0, 1])
def test_sources_read_in_batches_give_the_per_record_batches(mnist_test, shard_index):
    kw = dict(global_batch_size=16, shard_index=shard_index, shard_count=2)
    per_record = iter(_loader(IndexLabelled(mnist_test, 300), **kw))
    batched_src = BatchReadable(mnist_test, 300)
    batched = iter(_loader(batched_src, **kw))
    for _ in range(4):
        want, got = next(per_record), next(batched)
        np.testing.assert_array_equal(got["label"], want["label"])
        np.testing.assert_array_equal(got["image"], want["image"])
        assert got["image"].dtype == np.float32 and got["label"].dtype == np.int32
    # One read per batch, of exactly that batch's positions; no single-record reads.
    assert batched_src.single_reads == 0 and len(batched_src.batch_reads) == 4
    assert batched_src.batch_reads[-1] == got["label"].tolist()
    # The position saved by one restores into a fresh one.
    state = batched.get_state()
    expected = next(batched)
    again = iter(_loader(BatchReadable(mnist_test, 300), **kw))
    again.set_state(state)
    np.testing.assert_array_equal(next(again)["label"], expected["label"])


@needs_mnist
def test_tfds_source_reads_in_batches_with_the_same_examples(mnist_test):
    class OneAtATime:  # the same TFDS source without __getitems__
        def __len__(self):
            return len(mnist_test)

        def __getitem__(self, i):
            return mnist_test[i]

    want = next(iter(_loader(OneAtATime(), global_batch_size=32)))
    got = next(iter(_loader(mnist_test, global_batch_size=32)))
    np.testing.assert_array_equal(got["image"], want["image"])
    np.testing.assert_array_equal(got["label"], want["label"])


def test_loader_batch_not_divisible():
    src = [{"image": np.zeros((4, 4, 1), np.uint8), "label": 0}] * 10
    with pytest.raises(DataError) as info:
        make_image_loader(src, global_batch_size=10, resolution=4, channels=1, seed=0, shard_count=3)
    assert "10" in str(info.value) and "3" in str(info.value)


@needs_mnist
def test_loader_resizes_mnist(mnist_test):
    src = IndexLabelled(mnist_test, 500)
    b = next(iter(_loader(src, resolution=32)))
    assert b["image"].shape == (8, 32, 32, 1)
    for img, idx in zip(b["image"], b["label"]):
        raw = mnist_test[int(idx)]["image"]
        ref = np.asarray(Image.fromarray(raw[..., 0]).resize((32, 32), Image.BICUBIC))
        np.testing.assert_array_equal(img[..., 0], ref.astype(np.float32) / 127.5 - 1.0)
    b3 = next(iter(_loader(src, resolution=64, channels=3)))
    assert b3["image"].shape == (8, 64, 64, 3)
    np.testing.assert_array_equal(b3["image"][..., 0], b3["image"][..., 2])


def test_loader_rgb_to_gray_averages():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 30, 60, 90
    src = [{"image": rgb, "label": 3}] * 4
    b = next(iter(make_image_loader(src, global_batch_size=2, resolution=4, channels=1, seed=0)))
    assert b["image"].shape == (2, 4, 4, 1)
    np.testing.assert_allclose(b["image"], 60 / 127.5 - 1.0, rtol=0, atol=1e-6)
    assert b["label"].tolist() == [3, 3]


# ---------------------------------------------------------------------------
# 4: ImageFolderSource
# ---------------------------------------------------------------------------


def _save(path: Path, img: Image.Image, fmt: str | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


def _rand_img(w, h, mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    ch = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = rng.integers(0, 256, (h, w, ch), dtype=np.uint8)
    return Image.fromarray(arr[..., 0] if ch == 1 else arr, mode=mode)


def _png_bytes(img):
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("channels", [1, 3])
def test_image_folder_varied_sizes(tmp_path, channels):
    _save(tmp_path / "a.png", _rand_img(100, 100))
    _save(tmp_path / "b.JPG", _rand_img(120, 80), fmt="JPEG")
    _save(tmp_path / "sub" / "c.png", _rand_img(60, 200))
    _save(tmp_path / "sub" / "d.bmp", _rand_img(50, 70, "L"))
    _save(tmp_path / "e.png", _rand_img(90, 90, "RGBA"))
    _save(tmp_path / "f.webp", _rand_img(33, 17))
    (tmp_path / "notes.txt").write_text("not an image")
    _save(tmp_path / ".hidden.png", _rand_img(10, 10))
    src = ImageFolderSource(tmp_path, resolution=16, channels=channels)
    assert len(src) == 6 and src.num_skipped == 0
    names = [Path(f).relative_to(tmp_path).as_posix() for f in src.files]
    assert names == sorted(names)
    for i in range(len(src)):
        ex = src[i]
        assert ex["image"].shape == (16, 16, channels)
        assert ex["image"].dtype == np.uint8
        assert int(ex["label"]) == 0 and ex["label"].dtype == np.int32


def test_image_folder_solid_color_and_gray(tmp_path):
    _save(tmp_path / "solid.png", Image.new("RGB", (120, 80), (10, 200, 30)))
    _save(tmp_path / "tall.png", Image.new("RGB", (60, 200), (250, 5, 128)))
    _save(tmp_path / "gray.png", Image.new("L", (70, 50), 77))
    src = ImageFolderSource(tmp_path, resolution=24, channels=3)
    by_name = {Path(f).name: src[i]["image"] for i, f in enumerate(src.files)}
    assert (by_name["solid.png"] == np.array([10, 200, 30], np.uint8)).all()
    assert (by_name["tall.png"] == np.array([250, 5, 128], np.uint8)).all()
    assert (by_name["gray.png"] == 77).all()
    src1 = ImageFolderSource(tmp_path, resolution=24, channels=1)
    img = src1[[Path(f).name for f in src1.files].index("gray.png")]["image"]
    assert img.shape == (24, 24, 1) and (img == 77).all()


def test_image_folder_center_crop_keeps_split_centred(tmp_path):
    res = 16
    red, blue = (255, 0, 0), (0, 0, 255)
    wide = np.zeros((80, 120, 3), np.uint8)  # H=80, W=120
    wide[:, :60] = red
    wide[:, 60:] = blue
    _save(tmp_path / "wide.png", Image.fromarray(wide))
    tall = np.zeros((240, 60, 3), np.uint8)  # H=240, W=60
    tall[:120] = red
    tall[120:] = blue
    _save(tmp_path / "tall.png", Image.fromarray(tall))
    src = ImageFolderSource(tmp_path, resolution=res)
    out = {Path(f).name: src[i]["image"].astype(int) for i, f in enumerate(src.files)}

    w = out["wide.png"]
    assert (w[:, 0] == red).all() and (w[:, -1] == blue).all()
    # split is centred: mirror symmetry with red <-> blue swapped
    np.testing.assert_allclose(w[:, :, 0], w[:, ::-1, 2], atol=1)
    assert (w[:, : res // 2, 0] > w[:, : res // 2, 2]).all()
    assert (w[:, res // 2 :, 2] > w[:, res // 2 :, 0]).all()

    t = out["tall.png"]
    assert (t[0] == red).all() and (t[-1] == blue).all()
    np.testing.assert_allclose(t[:, :, 0], t[::-1, :, 2], atol=1)
    assert (t[: res // 2, :, 0] > t[: res // 2, :, 2]).all()

    # independent computation: shorter side -> res, crop the central res x res
    ref = Image.fromarray(wide).resize((24, 16), Image.BICUBIC)  # 120*16/80 = 24
    ref = np.asarray(ref)[:, 4:20].astype(int)
    np.testing.assert_array_equal(w, ref)
    ref_t = Image.fromarray(tall).resize((16, 64), Image.BICUBIC)  # 240*16/60 = 64
    ref_t = np.asarray(ref_t)[24:40].astype(int)  # (64 - 16) // 2 = 24
    np.testing.assert_array_equal(t, ref_t)
    # odd long side after resize: 200*16/60 = 53.3 -> 53, offset (53 - 16) // 2 = 18
    odd = np.asarray(_rand_img(60, 200, seed=5))
    ref_o = np.asarray(Image.fromarray(odd).resize((16, 53), Image.BICUBIC))[18:34]
    np.testing.assert_array_equal(resize_center_crop(odd, res), ref_o)
    # the numpy helper agrees with the source
    np.testing.assert_array_equal(resize_center_crop(wide, res).astype(int), w)


def _make_corrupt(folder: Path):
    good = _save(folder / "good.png", _rand_img(20, 20))
    bad = folder / "bad.jpg"
    bad.write_bytes(np.random.default_rng(1).bytes(500))
    full = _png_bytes(_rand_img(40, 40, seed=2))
    trunc = folder / "trunc.png"
    trunc.write_bytes(full[: len(full) // 2])
    return good, bad, trunc


def test_image_folder_corrupt_files(tmp_path):
    _, bad, trunc = _make_corrupt(tmp_path)
    with pytest.raises(DataError) as info:
        ImageFolderSource(tmp_path, resolution=8)
    assert str(bad) in str(info.value)
    assert "skip_corrupt" in str(info.value)

    only_trunc = tmp_path / "only_trunc"
    only_trunc.mkdir()
    _save(only_trunc / "ok.png", _rand_img(20, 20))
    t2 = only_trunc / "trunc.png"
    t2.write_bytes(trunc.read_bytes())
    with pytest.raises(DataError) as info:
        ImageFolderSource(only_trunc, resolution=8)
    assert str(t2) in str(info.value)

    src = ImageFolderSource(tmp_path / "only_trunc", resolution=8, skip_corrupt=True)
    assert len(src) == 1 and src.num_skipped == 1

    t2.unlink()
    (only_trunc / "ok.png").unlink()
    (only_trunc).rmdir()
    src = ImageFolderSource(tmp_path, resolution=8, skip_corrupt=True)
    assert len(src) == 1
    assert src.num_skipped == 2
    assert sorted(src.skipped) == sorted([str(bad), str(trunc)])
    assert src[0]["image"].shape == (8, 8, 3)


def test_image_folder_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    _rand_img(64, 64).save(buf, format="JPEG")
    data = buf.getvalue()
    (tmp_path / "t.jpeg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="t.jpeg"):
        ImageFolderSource(tmp_path, resolution=8)


def test_image_folder_getitem_decode_failure(tmp_path):
    p = _save(tmp_path / "x.png", _rand_img(20, 20))
    src = ImageFolderSource(tmp_path, resolution=8)
    p.write_bytes(b"garbage")
    with pytest.raises(DataError) as info:
        src[0]
    assert str(p) in str(info.value)
    with pytest.raises(IndexError):
        src[1]


def test_image_folder_empty_and_missing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as info:
        ImageFolderSource(empty, resolution=8)
    assert str(empty) in str(info.value)
    (empty / "readme.txt").write_text("no images")
    with pytest.raises(DataError, match="no image files"):
        ImageFolderSource(empty, resolution=8)
    missing = tmp_path / "does_not_exist"
    with pytest.raises(DataError) as info:
        ImageFolderSource(missing, resolution=8)
    assert str(missing) in str(info.value)


def test_image_folder_class_subfolders(tmp_path):
    _save(tmp_path / "dog" / "b.png", _rand_img(20, 20))
    _save(tmp_path / "cat" / "a.png", _rand_img(20, 20))
    _save(tmp_path / "dog" / "nested" / "c.png", _rand_img(20, 30))
    _save(tmp_path / "emu" / "d.jpg", _rand_img(25, 20), fmt="JPEG")
    src = ImageFolderSource(tmp_path, resolution=8, class_subfolders=True)
    assert src.classes == ["cat", "dog", "emu"]
    got = {Path(f).relative_to(tmp_path).as_posix(): int(src[i]["label"]) for i, f in enumerate(src.files)}
    assert got == {"cat/a.png": 0, "dog/b.png": 1, "dog/nested/c.png": 1, "emu/d.jpg": 2}
    # without class_subfolders everything is label 0
    plain = ImageFolderSource(tmp_path, resolution=8)
    assert {int(plain[i]["label"]) for i in range(len(plain))} == {0}
    # an image directly in root is an error with class_subfolders
    _save(tmp_path / "loose.png", _rand_img(20, 20))
    with pytest.raises(DataError, match="loose.png"):
        ImageFolderSource(tmp_path, resolution=8, class_subfolders=True)


def test_image_folder_with_loader(tmp_path):
    for i in range(10):
        _save(tmp_path / f"{i:02d}.png", _rand_img(30 + i, 20 + 2 * i, seed=i))
    src = ImageFolderSource(tmp_path, resolution=16)
    ld = make_image_loader(src, global_batch_size=4, resolution=16, channels=3, seed=1)
    it = iter(ld)
    b = next(it)
    assert b["image"].shape == (4, 16, 16, 3) and b["image"].dtype == np.float32
    assert b["label"].shape == (4,) and b["label"].dtype == np.int32
    assert -1.0 <= b["image"].min() and b["image"].max() <= 1.0
    state = it.get_state()
    expected = next(it)
    it2 = iter(make_image_loader(ImageFolderSource(tmp_path, resolution=16), global_batch_size=4,
                                 resolution=16, channels=3, seed=1))
    it2.set_state(state)
    np.testing.assert_array_equal(next(it2)["image"], expected["image"])


def test_pad_centres_the_image_on_a_zero_canvas():
    from jgan.data.images import _PrepareExample, pad_to
    image = np.arange(28 * 28, dtype=np.uint32).reshape(28, 28, 1).astype(np.uint8) | 1
    padded = pad_to(image, 32)
    assert padded.shape == (32, 32, 1)
    np.testing.assert_array_equal(padded[2:30, 2:30], image)
    assert padded.sum() == image.astype(np.int64).sum()  # only zeros were added
    odd = pad_to(image[:27, :27], 32)                    # the extra pixel goes bottom / right
    np.testing.assert_array_equal(odd[2:29, 2:29], image[:27, :27])
    x = _PrepareExample(32, 3, "pad")({"image": image, "label": 4})["image"]
    assert x.shape == (32, 32, 3) and (x[:2] == -1.0).all()


def test_pad_refuses_a_larger_image():
    from jgan.data.images import DataError, pad_to
    with pytest.raises(DataError, match="40x40 image into 32x32"):
        pad_to(np.zeros((40, 40), np.uint8), 32)


def test_tfds_notices_are_dropped_and_other_warnings_kept(caplog):
    import logging

    from absl import logging as absl_logging

    import jgan.data.images  # noqa: F401  (installs the filter)
    with caplog.at_level(logging.WARNING, logger="absl"):
        absl_logging.warning("OpenCV is not installed. We recommend using OpenCV ...")
        absl_logging.warning("Variant folder %s has no %s", "/d/mnist/3.0.1", "dataset_info.json")
        absl_logging.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]
