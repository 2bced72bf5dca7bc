"""FID and its kin for runs trained on an image folder: the folder is the reference."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from jgan.data.images import DataError, make_image_loader, to_run_shape
from jgan.data.in_memory import load_examples, to_model_range
from jgan.eval import suite
from jgan.eval.reference_stats import reference_stats_path
from jgan.train import builders, trainer
from jgan.train.input import _data_source
from tests.helpers import load_config, require_shared_fid_weights

NUM_IMAGES = 12
SIZES = [(40, 40), (48, 32), (24, 60), (33, 33), (64, 20), (32, 32)]


def _write_images(root, n=NUM_IMAGES, seed=0):
    """`n` deterministic PNGs of varied sizes and modes (RGB, gray, RGBA), one in a
    subfolder, plus a file that is not an image."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        w, h = SIZES[i % len(SIZES)]
        # Smooth-ish content (a gradient plus noise), so Inception sees images.
        base = np.linspace(0, 200, w)[None, :, None] + rng.integers(0, 55, (h, w, 3))
        image = Image.fromarray(base.astype(np.uint8))
        if i % 5 == 3:
            image = image.convert("L")
        elif i % 5 == 4:
            image = image.convert("RGBA")
        path = root / ("sub" if i == 7 else "") / f"img_{i:02d}.png"
        path.parent.mkdir(exist_ok=True)
        image.save(path)
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _write_images(tmp_path_factory.mktemp("refs") / "photos")


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory):
    """One reference-statistics cache for the module: the tests that compute Inception
    statistics of the same folder share them."""
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JGAN_CACHE_DIR", str(path))
        yield path


def _config(root, **eval_keys):
    config = load_config("image_folder")  # runlocal: 32 px RGB, a 4-step tiny DCGAN
    config.data.root = str(root)
    config.eval.metrics = "fid"
    for key, value in eval_keys.items():
        config.eval[key] = value
    return config


def _files(root):
    return sorted((p for p in root.rglob("*.png")), key=lambda p: p.relative_to(root).as_posix())


def test_real_images_are_the_training_data(folder):
    config = _config(folder)
    settings = suite.EvalSettings.from_config(config)
    assert settings.reference_root == str(folder) and settings.split == "all"
    images = suite.real_images(settings, NUM_IMAGES)
    assert images.shape == (NUM_IMAGES, 32, 32, 3) and images.dtype == np.uint8
    # What training holds in memory (data.on_device) and the grain pipeline yields: the
    # same preprocessing (`_PrepareExample`) of the same source.
    source = _data_source(config)
    trained = to_model_range(load_examples(source, resolution=32, channels=3)["image"])
    np.testing.assert_array_equal(images.astype(np.float32) / 127.5 - 1, np.asarray(trained))
    batch = next(iter(make_image_loader(source, global_batch_size=NUM_IMAGES, resolution=32,
                                        channels=3, seed=0, num_epochs=1)))["image"]
    as_uint8 = np.round((batch + 1) * 127.5).astype(np.uint8)
    assert sorted(x.tobytes() for x in as_uint8) == sorted(x.tobytes() for x in images)
    # In the folder's sorted file order; each file as to_run_shape makes it.
    files = _files(folder)
    assert [str(f) for f in files] == source.files
    for f, image in zip(files, images):
        np.testing.assert_array_equal(image, to_run_shape(
            np.asarray(Image.open(f).convert("RGB")), 32, 3))
    # Fewer: the first ones.
    np.testing.assert_array_equal(suite.real_images(settings, 5), images[:5])


def test_corrupt_files_follow_data_skip_corrupt(folder, tmp_path):
    broken = tmp_path / "photos"
    shutil.copytree(folder, broken)
    (broken / "img_00_broken.png").write_bytes(b"\x89PNG not really")
    config = _config(broken)
    with pytest.raises(DataError, match="img_00_broken.png"):
        suite.real_images(suite.EvalSettings.from_config(config), 2)
    config.data.skip_corrupt = True
    logs = []
    evaluator = suite.Evaluator(suite.EvalSettings.from_config(config), log=logs.append)
    assert evaluator.num_real == NUM_IMAGES
    assert any("Skipped 1 unreadable" in line for line in logs)


def test_cache_key_follows_the_folder_content(folder, tmp_path):
    root = tmp_path / "photos"
    shutil.copytree(folder, root)
    settings = suite.EvalSettings.from_config(_config(root))

    def key():
        return suite.Evaluator(settings, log=lambda _: None)._reference_key()

    first = key()
    assert first["dataset"].startswith("folder-") and first["dataset"].endswith("-photos")
    assert first["split"] == "all" and first["num_samples"] == NUM_IMAGES
    assert key() == first  # the same content, the same key
    name = reference_stats_path(**first).name
    assert name.startswith("folder-") and "photos_all_32px" in name
    # A file rewritten (other pixels and size), then only its modification time.
    target = _files(root)[2]
    Image.fromarray(np.full((40, 50, 3), 9, np.uint8)).save(target)
    second = key()
    assert second["dataset"] != first["dataset"]
    stat = os.stat(target)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert key()["dataset"] not in (first["dataset"], second["dataset"])
    # A file added: another fingerprint and count.
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "zzz.png")
    assert key()["num_samples"] == NUM_IMAGES + 1


def test_fid_of_the_folder_against_itself_is_zero(folder):
    """The folder's own images as the 'samples': FID 0, precision = recall = 1, with the
    protocol naming the folder and the real images it had (12 of the 10,000 asked)."""
    weights = require_shared_fid_weights()
    settings = suite.EvalSettings.from_config(_config(
        folder, metrics="fid,kid,pr", inception_weights=weights, num_samples=NUM_IMAGES,
        batch_size=6))
    logs = []
    evaluator = suite.Evaluator(settings, log=logs.append)
    real = evaluator.real_images().astype(np.float32) / 127.5 - 1.0
    results = evaluator.evaluate(iter([real[:6], real[6:]]))
    assert abs(results["fid"]["value"]) < 1e-3
    assert results["pr"]["precision"] == results["pr"]["recall"] == 1.0
    protocol = results["fid"]["protocol"]
    assert protocol["reference"] == f"folder:{folder.resolve()}"
    assert protocol["reference_folder"] == str(folder.resolve())
    assert protocol["reference_fingerprint"] in evaluator._reference_key()["dataset"]
    assert protocol["num_real"] == protocol["reference_folder_images"] == NUM_IMAGES
    assert protocol["num_real_requested"] == 10_000
    assert results["kid"]["protocol"]["num_real"] == NUM_IMAGES
    assert any(f"has {NUM_IMAGES} images: using all {NUM_IMAGES}" in line for line in logs)


def test_trained_folder_run_reports_its_real_count(folder, tmp_path):
    """The whole path: a tiny run on the folder, evaluated at the end into eval.json
    against the training folder itself (eval.num_real 10,000 > 12 images: all of them).
    KID rather than FID: the same real side and protocol record without a second
    2048 x 2048 eigendecomposition (~10 s on a busy 2-core CPU)."""
    weights = require_shared_fid_weights()
    config = _config(folder, metrics="kid", inception_weights=weights, num_samples=8,
                     batch_size=8)
    config.num_steps = 2
    builders.validate(config)
    trainer.train_and_evaluate(config, tmp_path / "run")
    kid = json.loads((tmp_path / "run" / "eval.json").read_text())["metrics"]["kid"]
    assert np.isfinite(kid["mean"])
    assert kid["protocol"]["num_real"] == NUM_IMAGES and kid["protocol"]["num_generated"] == 8
    assert kid["protocol"]["reference_folder"] == str(folder.resolve())


def test_reference_root_names_the_folder(folder, tmp_path):
    other = _write_images(tmp_path / "others", n=3, seed=1)
    settings = suite.EvalSettings.from_config(_config(folder, reference_root=str(other)))
    assert settings.reference_root == str(other)
    assert suite.Evaluator(settings, log=lambda _: None).num_real == 3
    # jgan.evaluate's --reference_root (an override): "" is the training folder.
    config = _config(folder)
    assert suite.EvalSettings.from_config(config, reference_root="").reference_root == str(folder)
    assert suite.EvalSettings.from_config(
        config, reference_root=str(other)).reference_root == str(other)
    tfds_run = load_config("dcgan_mnist")
    assert suite.EvalSettings.from_config(tfds_run).reference_root is None
    with pytest.raises(suite.EvalError, match="eval.reference_root.*data.kind='tfds'"):
        suite.EvalSettings.from_config(tfds_run, reference_root=str(other))
    missing = tmp_path / "no_such_folder"
    config = _config(folder, reference_root=str(missing))
    with pytest.raises(DataError, match=f"{missing}.*eval.reference_root"):
        builders.validate(config)
    with pytest.raises(DataError, match=str(missing)):
        suite.real_images(suite.EvalSettings.from_config(config), 2)
    # Mixture runs still have no reference.
    mixture = load_config("mixture", "ring,non_saturating,runlocal")
    mixture.eval.metrics = "fid"
    with pytest.raises(suite.EvalError, match="data.kind='mixture'"):
        suite.EvalSettings.from_config(mixture)
