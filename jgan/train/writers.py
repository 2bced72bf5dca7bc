"""What a run leaves in its workdir: metrics.jsonl, TensorBoard events, sample images."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def image_grid(images: np.ndarray, *, columns: int | None = None) -> np.ndarray:
    """`[N, H, W, C]` floats in [-1, 1] -> one uint8 `[rows*H, cols*W, C]` grid, 1-px gaps."""
    images = np.asarray(images, np.float32)
    n, h, w, c = images.shape
    cols = columns or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = np.zeros((rows * (h + 1) + 1, cols * (w + 1) + 1, c), np.uint8)
    pixels = np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + col * (w + 1):1 + col * (w + 1) + w] = pixels[i]
    return grid


def save_png(array: np.ndarray, path: str | Path) -> None:
    from PIL import Image
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    Image.fromarray(array).save(path)


def titled(grid: np.ndarray, parts: list[str], *, font_size: int = 10) -> np.ndarray:
    """`grid` (uint8 `[H, W, C]`) under a black band with `parts` in white, joined by
    " · " on one line where they fit the grid's width, else one part per line."""
    from PIL import Image, ImageDraw, ImageFont
    font = ImageFont.load_default(size=font_size)
    width, channels = grid.shape[1], grid.shape[2]
    joined = " · ".join(parts)
    lines = [joined] if font.getlength(joined) <= width - 4 else list(parts)
    line_height = font_size + 3
    band = Image.new("L" if channels == 1 else "RGB", (width, len(lines) * line_height + 2))
    draw = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        draw.text((2, 1 + i * line_height), line, fill=255 if channels == 1 else (255,) * 3,
                  font=font)
    band = np.asarray(band, np.uint8).reshape(band.height, width, channels)
    return np.concatenate([band, grid], axis=0)


def scatter_plot(samples: np.ndarray, means: np.ndarray, path: str | Path, *,
                 title: str = "") -> np.ndarray:
    """Scatter of 2-D samples (black dots, drawn above) over the mixture's modes (red
    crosses), with a legend; saves a PNG and returns it as a uint8 `[H, W, 3]` array.
    Few samples are drawn larger and more opaque, so that none hides under a mode."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    lim = float(np.abs(means).max()) * 1.5 + 0.5
    few = len(samples) <= 500
    ax.scatter(means[:, 0], means[:, 1], s=40, c="red", marker="x", linewidths=1,
               label="modes", zorder=1)
    ax.scatter(samples[:, 0], samples[:, 1], s=6 if few else 2, c="black",
               alpha=0.8 if few else 0.3, label=f"samples ({len(samples)})", zorder=2)
    ax.legend(loc="upper right", fontsize=7, markerscale=2, framealpha=0.8)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    fig.savefig(path)
    plt.close(fig)
    return rgb


def write_grids(writer: "RunWriter", grids: dict, directory: str | Path, step: int) -> None:
    """Writes `{name: (images [N, H, W, C] in [-1, 1], columns)}` as PNGs in `directory`
    ("samples" as `step_STEP.png`, others as `NAME_step_STEP.png`) and to TensorBoard
    under `samples` / `samples/NAME`."""
    for name, (images, columns) in grids.items():
        img = image_grid(np.asarray(images), columns=columns)
        prefix = "" if name == "samples" else f"{name}_"
        save_png(img, Path(directory) / f"{prefix}step_{step:07d}.png")
        writer.write_image(step, "samples" if name == "samples" else f"samples/{name}",
                           img if img.shape[-1] == 3 else np.repeat(img, 3, -1))


class RunWriter:
    """Appends scalars to `metrics.jsonl` and TensorBoard; images to TensorBoard.

    On resume at step s, `metrics.jsonl` lines of steps after s (written by a run that
    died after its last checkpoint) are dropped, so the file reads as one clean run.
    """

    def __init__(self, workdir: str | Path, *, resume_step: int = 0, enabled: bool = True):
        self.workdir = Path(workdir)
        self.enabled = enabled
        self.metrics_path = self.workdir / "metrics.jsonl"
        self._tb = None
        if not enabled:
            return
        if self.metrics_path.exists():
            kept = [line for line in self.metrics_path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] <= resume_step]
            self.metrics_path.write_text("".join(line + "\n" for line in kept))
        from tensorboardX import SummaryWriter
        self._tb = SummaryWriter(str(self.workdir / "tensorboard"), purge_step=resume_step + 1
                                 if resume_step else None)

    def logged_at(self, step: int, keys) -> dict:
        """The scalars of the last metrics.jsonl record of `step` that holds one of `keys`
        (the logged means of a run's losses there, not an evaluation's record), without
        "step"; {} if there is none."""
        if not self.enabled or not step or not self.metrics_path.exists():
            return {}
        for line in reversed(self.metrics_path.read_text().splitlines()):
            record = json.loads(line) if line.strip() else {}
            if record.get("step") == step and any(k in record for k in keys):
                return {k: v for k, v in record.items() if k != "step"}
        return {}

    def write_scalars(self, step: int, scalars: dict, *, replace: bool = False) -> None:
        """Appends `{"step": step, **scalars}` to metrics.jsonl (and TensorBoard).

        `replace=True` first drops a record of the same step and keys: the final
        evaluation's, which a run resumed at its end (rerun after it finished, or killed
        before eval.json) writes again.
        """
        if not self.enabled:
            return
        record = {"step": int(step), **{k: float(v) for k, v in scalars.items()}}
        if replace and self.metrics_path.exists():
            self._drop_records(int(step), set(record))
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        for k, v in scalars.items():
            self._tb.add_scalar(k, float(v), step)

    def _drop_records(self, step: int, keys: set) -> None:
        lines = self.metrics_path.read_text().splitlines()
        kept = [line for line in lines if line.strip()
                and not (json.loads(line)["step"] == step and set(json.loads(line)) == keys)]
        if len(kept) != len(lines):
            self.metrics_path.write_text("".join(line + "\n" for line in kept))

    def write_image(self, step: int, name: str, image: np.ndarray) -> None:
        if self.enabled:
            self._tb.add_image(name, np.asarray(image), step, dataformats="HWC")

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
