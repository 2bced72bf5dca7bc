"""jgan: a JAX research codebase for adversarial generative models."""
from setuptools import find_packages, setup

setup(
    name="jgan",
    version="0.1.0",
    description="Adversarial generative models in JAX: losses, penalties, shared "
    "game steps, models, data pipelines and experiments.",
    packages=find_packages(include=["jgan", "jgan.*", "experiments", "experiments.*"]),
    python_requires=">=3.10",
    install_requires=[
        # Upper bounds at the next minor of the versions tested (jax 0.10, flax 0.12,
        # orbax 0.12, grain 0.2): these libraries change APIs between minors.
        "jax>=0.7,<0.11",
        "flax>=0.10,<0.13",
        "optax>=0.2.4",
        "orbax-checkpoint>=0.11,<0.13",
        "chex>=0.1.88",
        "ml-collections>=1.0",
        "absl-py",
        "numpy",
        "scipy",  # FID (sqrtm), Inception Score (log_softmax); also a jax dependency.
        # Input pipelines: TFDS's array_record data sources, read without TensorFlow.
        "tensorflow-datasets>=4.9.7",
        "array-record",
        "importlib_resources",  # imported by tensorflow-datasets' data_source, undeclared there.
        "grain>=0.2.10,<0.3",
        "pillow",
        # Logging: TensorBoard event files without TensorFlow, plots, progress bar.
        "tensorboardX",
        "matplotlib",
        "tqdm",
        # The derived translation domains (jgan.data.derived_domains): its 8x8 handwritten
        # digits (a second writer population for MNIST) and its two sample photographs
        # (MNIST-M-style textures), shipped inside the package, so no download.
        "scikit-learn",
    ],
    # prdc: Naeem et al.'s reference implementation of precision/recall/density/coverage,
    # which tests/test_precision_recall.py checks jgan's against. torch: the PyTorch twins
    # of the SNGAN ResNets (benchmarks/resnet_projection_reference.py) that
    # tests/test_models_resnet.py matches to 1e-4; pinned to the CPU build these machines
    # hold, for tests only (jgan itself never imports torch).
    extras_require={"test": ["pytest", "pytest-xdist", "prdc", "torch==2.13.0"]},
)
