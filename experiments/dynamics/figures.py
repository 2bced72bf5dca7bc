"""Saving the lab's matplotlib figures."""
from __future__ import annotations

from pathlib import Path


def save_figure(fig, path: str | Path, *, dpi: int = 110) -> Path:
    """Lays `fig` out tightly, writes it to `path` (making its folder) and closes it."""
    import matplotlib.pyplot as plt
    path = Path(path)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
