"""Model FLOP utilization: a step's FLOPs by XLA's cost analysis over the device's peak.

    MFU = (FLOPs of one training step, `compiled.cost_analysis()["flops"]`)
          / (seconds per step) / (peak FLOP/s of the device for the compute dtype)

XLA counts the FLOPs of the program it compiled (2 per multiply-add of a convolution
or matmul, plus elementwise work), for the whole step: forward, backward and optimizer
updates of every team. The same count divides the torch side's time for its MFU, since
both run the same step (parameter counts are checked equal by each benchmark).

Peaks are the vendor's dense (no sparsity) figures: `PEAK_TFLOPS[device_kind][dtype]`;
pass `peak_tflops` for a device not listed. float32 on NVIDIA tensor-core GPUs is given
as TF32 (what XLA and torch use for float32 matmuls and convolutions by default on
Ampere and later: JAX's default matmul precision, torch's
`torch.backends.cudnn.allow_tf32 = True`).
"""
from __future__ import annotations

# Dense peak TFLOP/s by jax's `device.device_kind`.
PEAK_TFLOPS = {
    "NVIDIA H100 80GB HBM3": {"float32": 494.7, "bfloat16": 989.4},   # SXM5; fp32 as TF32
    "NVIDIA H100 PCIe": {"float32": 378.0, "bfloat16": 756.0},
    "NVIDIA H200": {"float32": 494.7, "bfloat16": 989.4},
    "NVIDIA A100-SXM4-80GB": {"float32": 156.0, "bfloat16": 312.0},
    "NVIDIA A100-SXM4-40GB": {"float32": 156.0, "bfloat16": 312.0},
    "TPU v4": {"float32": 275.0, "bfloat16": 275.0},
    "TPU v5 lite": {"float32": 197.0, "bfloat16": 197.0},
    "TPU v5": {"float32": 459.0, "bfloat16": 459.0},
}


def peak_flops(device_kind: str, dtype: str, peak_tflops: float | None = None) -> float | None:
    """Peak FLOP/s of `device_kind` computing in `dtype` ("float32" | "bfloat16"), or
    `peak_tflops` when given; None where neither is known (a CPU: MFU is not reported)."""
    if peak_tflops:
        return peak_tflops * 1e12
    for kind, peaks in PEAK_TFLOPS.items():
        if device_kind.startswith(kind):
            return peaks[dtype] * 1e12
    return None


def step_flops(compiled) -> float:
    """FLOPs of one call of a compiled JAX function (XLA's cost analysis; summed over a
    list of per-device analyses where it returns one)."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        return float(sum(a.get("flops", 0.0) for a in analysis))
    return float(analysis["flops"])


def mfu(flops_per_step: float, seconds_per_step: float, peak: float | None) -> float | None:
    """The fraction of `peak` FLOP/s that `flops_per_step` in `seconds_per_step` is."""
    if peak is None or seconds_per_step <= 0:
        return None
    return flops_per_step / seconds_per_step / peak
