"""Frozen-feature evaluation of encoders: linear probe and k-NN accuracy.

* Linear probe: multinomial logistic regression on frozen features, trained on the
  train split, top-1 accuracy on the test split (the protocol of e.g. Donahue et al.
  2017, BiGAN; Chen et al. 2020, SimCLR). Here: features standardized with train
  statistics, the L2-regularized objective minimized to convergence with full-batch
  L-BFGS (``optax.lbfgs``, zoom line search), which is deterministic (no seed).
* k-NN: the weighted k-nearest-neighbour classifier of Wu et al. 2018 ("Unsupervised
  feature learning via non-parametric instance discrimination"), as used by DINO
  (Caron et al. 2021): each of the k nearest training features votes for its label
  with weight ``exp(s / T)`` (``s`` the similarity, T = 0.07); ``temperature=None``
  gives the plain majority vote.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree

__all__ = ["READOUTS", "encode_source", "knn_accuracy", "linear_probe", "probe_encoder",
           "readout"]


def _check_features(name: str, features, labels) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features)
    labels = np.asarray(labels)
    if features.ndim != 2:
        raise ValueError(f"{name}_features must be (N, D), got shape {features.shape}.")
    if labels.shape != (features.shape[0],):
        raise ValueError(f"{name}_labels must be ({features.shape[0]},) to match "
                         f"{name}_features, got shape {labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise ValueError(f"{name}_labels must be non-negative integers, got {labels.dtype}.")
    if features.shape[0] == 0:
        raise ValueError(f"{name}_features is empty.")
    if not np.all(np.isfinite(features)):
        raise ValueError(f"{name}_features contains NaN or inf.")
    return features.astype(np.float32), labels.astype(np.int32)


def _check_pair(train_features, train_labels, test_features, test_labels):
    train_x, train_y = _check_features("train", train_features, train_labels)
    test_x, test_y = _check_features("test", test_features, test_labels)
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"train_features have {train_x.shape[1]} dimensions, test_features "
                         f"{test_x.shape[1]}.")
    return train_x, train_y, test_x, test_y


def _logistic_objective(params, x, y, l2):
    """mean_i CE(softmax(x_i W + b), y_i) + l2 / 2 ||W||^2 (bias not penalized)."""
    logits = x @ params["w"] + params["b"]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return ce + 0.5 * l2 * jnp.sum(params["w"] ** 2)


@functools.partial(jax.jit, static_argnames=("num_classes",))
def _fit_logistic(x, y, l2, max_steps, tolerance, *, num_classes: int):
    objective = functools.partial(_logistic_objective, x=x, y=y, l2=l2)
    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(objective)

    def step(carry):
        params, state = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = solver.update(grad, state, params, value=value, grad=grad,
                                       value_fn=objective)
        return optax.apply_updates(params, updates), state

    def keep_going(carry):
        _, state = carry
        count = optax.tree.get(state, "count")
        grad_norm = optax.tree.norm(optax.tree.get(state, "grad"))
        return (count == 0) | ((count < max_steps) & (grad_norm >= tolerance))

    params = {"w": jnp.zeros((x.shape[1], num_classes), x.dtype),
              "b": jnp.zeros((num_classes,), x.dtype)}
    params, state = jax.lax.while_loop(keep_going, step, (params, solver.init(params)))
    grad_norm = optax.tree.norm(jax.grad(objective)(params))
    return params, objective(params), optax.tree.get(state, "count"), grad_norm


@jax.jit
def _top1(params, x, y):
    return jnp.mean(jnp.argmax(x @ params["w"] + params["b"], axis=-1) == y)


def linear_probe(train_features, train_labels, test_features, test_labels, *,
                 l2: float = 1e-4, num_steps: int = 1000, tolerance: float = 1e-5,
                 num_classes: int | None = None) -> dict:
    """Top-1 of multinomial logistic regression on frozen features.

    Features are standardized with the train mean and standard deviation (constant
    dimensions get scale 1), then ``W (D, C), b (C,)`` minimize
    ``mean_i -log softmax(x_i W + b)[y_i] + l2 / 2 ||W||_F^2`` over the train split
    by full-batch L-BFGS until ``||grad|| < tolerance`` or ``num_steps`` iterations.

    Args:
      train_features: (N, D) frozen features of the train split.
      train_labels: int (N,) class labels.
      test_features: (M, D) features of the test split.
      test_labels: int (M,).
      l2: weight-decay coefficient of the objective above.
      num_steps: maximum L-BFGS iterations.
      tolerance: stop once the objective's gradient norm is below it.
      num_classes: C (default: 1 + the largest label seen).
    Returns:
      dict with ``top1`` (test accuracy), ``train_top1``, ``train_objective`` (the
      minimized objective), ``grad_norm`` (its gradient norm at the end),
      ``num_iterations``, ``converged`` (grad_norm < tolerance), ``num_classes``, ``l2``.
    """
    train_x, train_y, test_x, test_y = _check_pair(train_features, train_labels,
                                                   test_features, test_labels)
    largest = int(max(train_y.max(), test_y.max()))
    if num_classes is None:
        num_classes = largest + 1
    elif num_classes <= largest:
        raise ValueError(f"num_classes={num_classes} but a label is {largest}.")
    if l2 < 0 or num_steps < 1 or tolerance < 0:
        raise ValueError(f"need l2 >= 0, num_steps >= 1, tolerance >= 0; got l2={l2}, "
                         f"num_steps={num_steps}, tolerance={tolerance}.")
    mean = train_x.mean(axis=0, dtype=np.float64)
    std = train_x.std(axis=0, dtype=np.float64)
    mean = mean.astype(np.float32)
    std = np.where(std > 0, std, 1.0).astype(np.float32)
    train_x = (train_x - mean) / std
    test_x = (test_x - mean) / std
    params, objective, count, grad_norm = _fit_logistic(
        jnp.asarray(train_x), jnp.asarray(train_y), jnp.float32(l2), jnp.int32(num_steps),
        jnp.float32(tolerance), num_classes=int(num_classes))
    return {
        "top1": float(_top1(params, test_x, test_y)),
        "train_top1": float(_top1(params, train_x, train_y)),
        "train_objective": float(objective),
        "grad_norm": float(grad_norm),
        "num_iterations": int(count),
        "converged": bool(grad_norm < tolerance),
        "num_classes": int(num_classes),
        "l2": float(l2),
    }


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@functools.partial(jax.jit, static_argnames=("k", "num_classes", "metric"))
def _knn_predict(train_x, train_y, queries, temperature, *, k: int, num_classes: int,
                 metric: str):
    if metric == "cosine":
        top_similarity, top_index = jax.lax.top_k(queries @ train_x.T, k)
    else:  # the k smallest squared distances; the square root only for those
        squared = (jnp.sum(queries ** 2, axis=1, keepdims=True) - 2.0 * queries @ train_x.T
                   + jnp.sum(train_x ** 2, axis=1))
        top_negative_squared, top_index = jax.lax.top_k(-squared, k)
        top_similarity = -jnp.sqrt(jnp.maximum(-top_negative_squared, 0.0))
    # exp((s - max s) / T): the shift rescales a query's weights, not their ratios.
    # (A max, not top_similarity[:, :1]: on CPU, XLA turns a sliced top_k into a full sort.)
    weights = jnp.exp((top_similarity - top_similarity.max(axis=1, keepdims=True)) / temperature)
    votes = jax.nn.one_hot(train_y[top_index], num_classes) * weights[..., None]
    return jnp.argmax(votes.sum(axis=1), axis=-1)


def knn_accuracy(train_features, train_labels, test_features, test_labels, *, k: int = 20,
                 metric: str = "cosine", temperature: float | None = 0.07,
                 batch_size: int = 512) -> float:
    """Top-1 accuracy of the weighted k-NN classifier (Wu et al. 2018; DINO).

    For each test feature, the k training features of highest similarity ``s``
    vote for their labels with weight ``exp(s / temperature)``; the label with the
    largest total wins (ties: the smaller label). ``temperature=None`` weights every
    neighbour 1 (majority vote).

    Args:
      train_features: (N, D); test_features: (M, D).
      train_labels: int (N,); test_labels: int (M,).
      k: neighbours, 1 <= k <= N.
      metric: ``"cosine"`` (``s`` = cosine similarity of L2-normalized features, as
        in DINO with T = 0.07) or ``"l2"`` (``s = -||x - y||``; choose
        ``temperature`` at the scale of the distances, or None).
      temperature: T > 0 of the vote weights, or None for a majority vote.
      batch_size: test features compared at once; memory is O(batch_size * N).
    Returns:
      Fraction of test features whose predicted label equals their label.
    """
    train_x, train_y, test_x, test_y = _check_pair(train_features, train_labels,
                                                   test_features, test_labels)
    if metric not in ("cosine", "l2"):
        raise ValueError(f"metric must be 'cosine' or 'l2', got {metric!r}.")
    if not 1 <= k <= len(train_x):
        raise ValueError(f"k must be in [1, {len(train_x)}] (the train size), got {k}.")
    if temperature is not None and not temperature > 0:
        raise ValueError(f"temperature must be > 0 or None, got {temperature}.")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    if metric == "cosine":
        train_x, test_x = _unit_rows(train_x), _unit_rows(test_x)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    temperature = jnp.float32(np.inf if temperature is None else temperature)
    train_x, train_y = jnp.asarray(train_x), jnp.asarray(train_y)
    batch_size = min(batch_size, len(test_x))
    correct = 0
    for start in range(0, len(test_x), batch_size):
        queries = test_x[start:start + batch_size]
        num = len(queries)
        if num < batch_size:  # pad so that every batch reuses one compiled shape
            queries = np.concatenate([queries, np.zeros((batch_size - num, queries.shape[1]),
                                                        queries.dtype)])
        predicted = _knn_predict(train_x, train_y, jnp.asarray(queries), temperature, k=k,
                                 num_classes=num_classes, metric=metric)
        correct += int(np.sum(np.asarray(predicted)[:num] == test_y[start:start + num]))
    return correct / len(test_x)


READOUTS = ("pooled", "bn_crelu")


def readout(train_features, test_features, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """BigBiGAN's two readouts of frozen features (Donahue & Simonyan 2019, Sec. 4):
    "pooled", the features as they are; "bn_crelu", batch norm without learned scale
    (each dimension standardized with the train split's mean and standard deviation)
    followed by CReLU, h -> [max(h, 0), max(-h, 0)] (twice the dimensions).

    Args:
      train_features: (N, D) features of the train split.
      test_features: (M, D) features of the test split.
      kind: one of `READOUTS`.
    Returns:
      (train (N, D'), test (M, D')) float32.
    """
    if kind not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {kind!r}.")
    train_x = np.asarray(train_features, np.float32)
    test_x = np.asarray(test_features, np.float32)
    if kind == "pooled":
        return train_x, test_x
    mean = train_x.mean(axis=0, dtype=np.float64)
    std = train_x.std(axis=0, dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    crelu = lambda x: np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)], axis=1)
    return tuple(crelu(((x - mean) / std).astype(np.float32)) for x in (train_x, test_x))


def encode_source(encode_fn: Callable, source, *, batch_size: int = 256,
                  num_examples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of the first ``num_examples`` examples of an image source.

    Args:
      encode_fn: maps float32 images (B, H, W, C) in [-1, 1] to features (B, D);
        always called with B = batch_size (the last batch is zero-padded), so a
        jitted encoder compiles once.
      source: random-access source of ``{'image': uint8 (H, W, C), 'label': int}``
        (:func:`jgan.data.images.tfds_source`, Stacked MNIST, an image folder).
      batch_size: images per ``encode_fn`` call.
      num_examples: how many (default: all of ``source``).
    Returns:
      (features float32 (N, D), labels int32 (N,)).
    """
    total = len(source) if num_examples is None else int(num_examples)
    if not 0 < total <= len(source):
        raise ValueError(f"num_examples must be in [1, {len(source)}], got {num_examples}.")
    read_many = getattr(source, "__getitems__", None)
    features, labels = [], []
    for start in range(0, total, batch_size):
        indices = list(range(start, min(start + batch_size, total)))
        records = read_many(indices) if read_many else [source[i] for i in indices]
        images = np.stack([np.asarray(r["image"]) for r in records])
        if images.dtype != np.uint8:
            raise ValueError(f"source images must be uint8, got {images.dtype}.")
        images = images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
        num = len(images)
        if num < batch_size:
            images = np.concatenate([images, np.zeros((batch_size - num, *images.shape[1:]),
                                                      np.float32)])
        encoded = np.asarray(encode_fn(images))
        if encoded.ndim != 2 or encoded.shape[0] != batch_size:
            raise ValueError(f"encode_fn must return features ({batch_size}, D), got shape "
                             f"{encoded.shape}.")
        features.append(encoded[:num].astype(np.float32))
        labels.append(np.array([int(r["label"]) for r in records], np.int32))
    return np.concatenate(features), np.concatenate(labels)


def probe_encoder(encode_fn: Callable, train_source, test_source, *, batch_size: int = 256,
                  num_train: int | None = None, num_test: int | None = None,
                  l2: float = 1e-4, k: int = 20, temperature: float | None = 0.07) -> dict:
    """Linear-probe and k-NN (cosine) accuracy of ``encode_fn`` on two image sources.

    Encodes both sources with :func:`encode_source`, then runs :func:`linear_probe`
    (with ``l2``) on both :func:`readout` s and :func:`knn_accuracy` (cosine, ``k``,
    ``temperature``) on the features as they are.

    Returns:
      dict with ``linear`` (the :func:`linear_probe` dict of the features as they are),
      ``linear_bn_crelu`` (the same on the batch norm + CReLU readout), ``knn_top1`` (float),
      ``num_train``, ``num_test``, ``feature_dim``, ``k``.
    """
    train_x, train_y = encode_source(encode_fn, train_source, batch_size=batch_size,
                                     num_examples=num_train)
    test_x, test_y = encode_source(encode_fn, test_source, batch_size=batch_size,
                                   num_examples=num_test)
    bn_x, bn_test = readout(train_x, test_x, "bn_crelu")
    return {
        "linear": linear_probe(train_x, train_y, test_x, test_y, l2=l2),
        "linear_bn_crelu": linear_probe(bn_x, train_y, bn_test, test_y, l2=l2),
        "knn_top1": knn_accuracy(train_x, train_y, test_x, test_y, k=k,
                                 temperature=temperature),
        "num_train": len(train_x),
        "num_test": len(test_x),
        "feature_dim": int(train_x.shape[1]),
        "k": int(k),
    }
