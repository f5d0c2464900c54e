#!/usr/bin/env bash
# The GPU check in one command (see scripts/gpu_check.py): every model on CUDA in fp32/bf16/fp16,
# compile and channels_last, torchrun on 2 GPUs, finite losses and resume; writes
# docs/performance_gpu.md. Without CUDA it says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] && python=.venv/bin/python
exec "$python" scripts/gpu_check.py "$@"
