"""The history of generated images a discriminator is shown (Shrivastava et al. 2017,
"Learning from Simulated and Unsupervised Images through Adversarial Training"; the
pool of 50 of CycleGAN, Zhu et al. 2017).

Each generated image of a batch goes through the pool in turn: while it holds fewer
than `size` images the image is stored and shown; once full, with probability 1/2 a
stored image picked uniformly is shown instead and the new one takes its place, else
the new image is shown and the pool is unchanged. The discriminator thus also sees
older generators' images, which damps oscillation.

The pool is a pytree (`{"images": [size, H, W, C], "count": int32}`) kept in a game's
extras (`GameState.extras`), so checkpoints save it and a resumed run continues with
the same history.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["empty_pool", "query_pool"]


def empty_pool(size: int, image_shape: tuple[int, ...]) -> dict:
    """A pool of `size` images of `image_shape` `(H, W, C)`, holding none."""
    if size < 1:
        raise ValueError(f"An image pool holds at least one image, got size={size}.")
    return {"images": jnp.zeros((size,) + tuple(image_shape), jnp.float32),
            "count": jnp.zeros((), jnp.int32)}


def query_pool(pool: dict, images: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
    """The images to show for a batch of new ones, and the pool after them.

    Args:
      pool: as `empty_pool` makes it.
      images: `[B, H, W, C]` newly generated images (gradients do not flow into the pool).
      key: the draws of this query.
    Returns:
      `(shown [B, H, W, C], new pool)`.
    """
    size = pool["images"].shape[0]
    images = jax.lax.stop_gradient(images).astype(pool["images"].dtype)

    def one(pool, inputs):
        image, k = inputs
        swap_key, index_key = jax.random.split(k)
        full = pool["count"] >= size
        swap = full & (jax.random.uniform(swap_key) < 0.5)
        index = jnp.where(full, jax.random.randint(index_key, (), 0, size), pool["count"])
        stored = pool["images"][index]
        shown = jnp.where(swap, stored, image)
        # Not full: store at the next slot. Full: replace on a swap, else keep.
        keep_old = full & ~swap
        pool = {"images": pool["images"].at[index].set(jnp.where(keep_old, stored, image)),
                "count": jnp.minimum(pool["count"] + 1, size)}
        return pool, shown

    pool, shown = jax.lax.scan(one, pool, (images, jax.random.split(key, images.shape[0])))
    return shown, pool
