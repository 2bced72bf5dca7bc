#!/usr/bin/env bash
# The accelerator figures of issue 27, as prepared on a CPU (nothing here has run on a
# GPU yet). Run from the repository root on a lent GPU with $OUT set (the device tool):
#
#   bash benchmarks/gpu_issue27.sh gans      # DCGAN-64 and SNGAN-32, about 6 minutes
#   bash benchmarks/gpu_issue27.sh bigbigan  # BigBiGAN 64 / 128 px, about 7-8 minutes
#
# Each writes JSON lines, logs and profiles under $OUT. The device machine has no
# ml_collections: carry it as a wheel (see /work/.library/device/README.md), e.g.
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 -d .whl ml_collections==1.1.0
# and name .whl in the run's carry; this script installs it when .whl exists.
# The batch-2,048 rows of BigBiGAN run at 64 px: at 128 px XLA's estimate of the step's
# scratch memory is 207 GiB in float32 (benchmarks/bigbigan_throughput.py --cost_only).
set -u
OUT=${OUT:?set OUT to the folder whose files come back}
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:.
else
  export PYTHONPATH=.
fi
export PYTHONUNBUFFERED=1
nvidia-smi -L
case "${1:-}" in
  gans)
    python3 benchmarks/dcgan_throughput.py --torch-device cuda --resolution 64 --channels 3 \
        --batches 512,2048,64 --dtype bfloat16,float32 --torch-compile --steps 30 --warmup 3 \
        --rounds 3 --round-seconds 1 --max-seconds 150 --profile-steps 2 \
        --json "$OUT/dcgan64.jsonl" > "$OUT/dcgan64.log" 2>&1
    python3 benchmarks/projection_gan_throughput.py --device cuda --batches 512,2048,64 \
        --dtype bfloat16,float32 --torch-compile --steps 30 --warmup 3 --rounds 3 \
        --round-seconds 1 --max-seconds 170 --profile-steps 2 \
        --json "$OUT/sngan32.jsonl" > "$OUT/sngan32.log" 2>&1
    tail -n 25 "$OUT"/*.log ;;
  bigbigan)
    B=benchmarks/bigbigan_throughput.py; J=$OUT/bigbigan.jsonl
    timeout 100 python3 $B --scale=tiny --resolution=64 --batch_sizes=8 --steps=1 --rounds=1 \
        --no-torch_compile --json="$OUT/smoke.jsonl"
    grep -q '"error"' "$OUT/smoke.jsonl" && exit 1
    timeout 330 python3 $B --resolution=64 --batch_sizes=2048 --dtypes=bfloat16,float32 \
        --steps=5 --rounds=2 --warmup=1 --json="$J" --profile="$OUT/prof" \
        --profile_only=2048:bfloat16 --profile_steps=2
    timeout 90 python3 $B --resolution=128 --batch_sizes=256 --dtypes=bfloat16 --steps=5 \
        --rounds=2 --warmup=1 --no-torch_compile --json="$J" ;;
  *) echo "usage: $0 gans|bigbigan" >&2; exit 2 ;;
esac
