#!/usr/bin/env bash
# The main job on a fresh machine, offline: install, train on the built-in synthetic dataset
# until the model visibly learns, translate the test set, and print the result page's path.
#
#   bash scripts/quickstart.sh                 # attentiongan
#   bash scripts/quickstart.sh cycle_gan       # any registered unpaired model
#
# A CPU-sized run: 64 px, a reduced network (ngf/ndf 16, 6 residual blocks), 3000 training
# images (12 epochs of 250), --precision auto (bf16 where the hardware has it); a few minutes on 2 CPU cores. On the
# result page, fake_B shows black-and-white stripes painted on the plain "horses" and
# attention_A is white where the animals are (the mask the model learnt, no supervision);
# the background columns show it leaves the rest of the picture mostly alone.
# Drop the size options for a real run (the papers' networks at 256 px, on a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-attentiongan}
bash scripts/setup_env.sh
name="quickstart_${model}"
network=(--ngf 16 --ndf 16 --netG resnet_6blocks --load_size 72 --crop_size 64)
started=$(date +%s)
# --precision auto: bf16 where the CPU or GPU runs it fast, fp32 elsewhere (the log says which)
.venv/bin/python train.py --model "$model" --name "$name" "${network[@]}" --precision auto \
  --max_dataset_size 250 --n_epochs 8 --n_epochs_decay 4 --max_iters 3000 \
  --display_id 0 --print_freq 250 --display_freq 500 --no_progress \
  || { status=$?; [ $status -eq 2 ] && echo "(a run named $name exists: rm -r checkpoints/$name to start over)"; exit $status; }
echo "trained in $(( $(date +%s) - started )) s"
.venv/bin/python test.py --model "$model" --name "$name" --crop_size 64 --num_test 20 --no_progress --precision auto
echo
echo "Result page: $(pwd)/results/$name/test_latest/index.html"
echo "  fake_B: stripes painted on the plain objects; attention_A: the learnt mask (white = object)"
echo "Training page: $(pwd)/checkpoints/$name/web/index.html"
