#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py, `make gpu-check`): on a machine with CUDA, the CUDA tests,
# the generator at batches 1..16384 in float32 and bf16, eager and torch.compile (CUDA graphs), the
# serving benchmark with GAN_DEVICE=cuda (n=256 base64) and a 200-step bf16-autocast training run,
# in about 5 minutes, into ONE JSON: benchmarks/results-gpu.json. Exit code 2 without CUDA.
#
#   benchmarks/gpu_check.sh                          # on the GPU machine
#   GPU_CHECK_DEVICE=cpu benchmarks/gpu_check.sh     # dry run: every stage tiny, on the CPU
#   benchmarks/gpu_check.sh --out /tmp/gpu.json --stages generator,serving
#
# GPU_CHECK_PYTHON picks the interpreter (default .venv/bin/python, else python3); the machine's
# torch must be a CUDA build. GPU_CHECK_TIMEOUT_S (default 420) bounds the whole run.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${GPU_CHECK_PYTHON:-}
if [[ -z "$python" ]]; then
    if [[ -x .venv/bin/python ]]; then python=.venv/bin/python; else python=python3; fi
fi
device=${GPU_CHECK_DEVICE:-cuda}

if ! "$python" -c 'import torch' 2>/dev/null; then
    echo "gpu_check: $python cannot import torch (make install, or set GPU_CHECK_PYTHON)" >&2
    exit 2
fi
if [[ "$device" != cpu ]] && ! "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    # gpu_check.py says why (CPU build of torch, no driver) and exits 2.
    exec "$python" benchmarks/gpu_check.py --device "$device" "$@"
fi
exec timeout --kill-after=15 "${GPU_CHECK_TIMEOUT_S:-420}" \
    "$python" benchmarks/gpu_check.py --device "$device" --python "$python" "$@"
