#!/usr/bin/env bash
# The main job on a fresh machine, offline: install, train briefly on the built-in
# synthetic dataset, translate its test set, and print the result page's path.
#
#   bash scripts/quickstart.sh                 # cycle_gan
#   bash scripts/quickstart.sh attentiongan    # any registered model
#
# A short CPU-sized run (64 px, 40 images, 1 epoch; a few minutes on 2 CPU cores): it shows the pipeline working,
# not a trained model. Drop the size options for a real run.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-cycle_gan}
bash scripts/setup_env.sh
name="quickstart_${model}"
size=(--load_size 72 --crop_size 64)
.venv/bin/python train.py --model "$model" --name "$name" "${size[@]}" --max_dataset_size 40 \
  --n_epochs 1 --n_epochs_decay 0 --display_id 0 --print_freq 10 --display_freq 20 \
  || { status=$?; [ $status -eq 2 ] && echo "(a run named $name exists: rm -r checkpoints/$name to start over)"; exit $status; }
.venv/bin/python test.py --model "$model" --name "$name" --crop_size 64 --num_test 10
echo
echo "Result page: $(pwd)/results/$name/test_latest/index.html"
echo "Training page: $(pwd)/checkpoints/$name/web/index.html"
