#!/usr/bin/env bash
# Create ./.venv and install requirements.txt into it (safe to run again).
#
# visdom 0.2.4 is published as source only and its build imports pkg_resources, which
# setuptools >= 81 no longer ships: the constraint below applies to pip's build
# environments too, so the build gets a setuptools that still has it.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
echo "setuptools<81" > "$constraints"
echo "installing requirements.txt into .venv (torch is large: the first time takes a few minutes)"
PIP_CONSTRAINT="$constraints" .venv/bin/python -m pip install --disable-pip-version-check -q -r requirements.txt
.venv/bin/python -c "import torch, torchvision, visdom, dominate; print(f'torch {torch.__version__}, torchvision {torchvision.__version__}, CUDA available: {torch.cuda.is_available()}')"
