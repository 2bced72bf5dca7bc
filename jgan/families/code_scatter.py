"""A picture of 2-D codes: where an encoder puts each class, over draws of the prior."""
from __future__ import annotations

import numpy as np


def code_scatter(codes: np.ndarray, labels: np.ndarray, prior_draws: np.ndarray, *,
                 title: str = "") -> np.ndarray:
    """Codes `[N, 2]` coloured by their labels `[N]` (a legend of the classes) above
    prior draws `[M, 2]` in light grey, as an RGB image.

    Returns:
      uint8 `[H, W, 3]`.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    codes, labels, prior_draws = np.asarray(codes), np.asarray(labels), np.asarray(prior_draws)
    if codes.ndim != 2 or codes.shape[1] != 2 or len(labels) != len(codes):
        raise ValueError(f"code_scatter needs codes [N, 2] and labels [N], got {codes.shape} "
                         f"and {labels.shape}.")
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    ax.scatter(prior_draws[:, 0], prior_draws[:, 1], s=2, c="0.8", label="p(z)", zorder=1)
    colours = plt.get_cmap("tab10")
    for i, label in enumerate(np.unique(labels)):
        chosen = labels == label
        ax.scatter(codes[chosen, 0], codes[chosen, 1], s=2, color=colours(i % 10),
                   label=str(label), zorder=2)
    both = np.concatenate([codes, prior_draws])
    low, high = np.percentile(both, [0.5, 99.5], axis=0)
    margin = 0.1 * (high - low).max() + 1e-3
    ax.set_xlim(low[0] - margin, high[0] + margin)
    ax.set_ylim(low[1] - margin, high[1] + margin)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=6, markerscale=3, framealpha=0.8, ncol=2)
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return rgb
