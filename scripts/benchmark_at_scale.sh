#!/usr/bin/env bash
# The family compared at 128 px (docs/benchmark.md leads with these tables).
#
#   bash scripts/benchmark_at_scale.sh horse2zebra   # the headline setting
#   bash scripts/benchmark_at_scale.sh a             # built-in set, backgrounds alike
#   bash scripts/benchmark_at_scale.sh b             # built-in set, backgrounds differ
#   bash scripts/benchmark_at_scale.sh all
#
# The scaling rules are scripts/attention_benchmark.py's, the same for every model: its
# discriminators see the papers' 70/256 of the image side (PatchGAN depth 2 at 128 px),
# schedules given in epochs scale with the budget, and all runs share the image budget, the
# network and the seed. The network is the benchmark's reduction (ngf/ndf 16, ResNet-6): on a
# 2-core AVX2 CPU the papers' ngf 64, ResNet-9 takes 6.5 s per image for cycle_gan at 128 px,
# the reduction 0.6 s (scripts/benchmark_speed.py); pass FULL=1 for the papers' networks (GPU).
#
# Every run resumes where it stopped (a checkpoint every 500 images): after an interruption
# run the same command again. Each run keeps a checkpoint per epoch for
# scripts/attention_over_time.py. Run nothing else CPU-heavy beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
H2Z=${H2Z:-../shared/datasets/horse2zebra}
OUT=${OUT:-results/at_scale}
MODELS=(cycle_gan attentiongan aggan uait saagan guidegan)
TRAIN=(--save_latest_freq 500 --save_epoch_freq 1)
NETWORK=()
if [[ "${FULL:-0}" == 1 ]]; then NETWORK=(--full_network); fi

bench() {
    "$PYTHON" scripts/attention_benchmark.py --size 128 --classifier auto "${NETWORK[@]}" "$@"
}

horse2zebra() {
    # 10 epochs of horse2zebra per model: 1334 images an epoch (the larger domain), 13,340 in all.
    local budget=(--dataroot "$H2Z" --epoch_size 1334 --n_epochs 5 --n_epochs_decay 5 --max_iters 0)
    bench "${budget[@]}" --model "${MODELS[@]}" --prefix h128 --summary "$OUT/h128.md" \
        --leaderboard "$OUT/h128_leaderboard" -- "${TRAIN[@]}"
    # The supervised variants: every mask (SAAGAN's supervised experiment), then 10% of them, replayed
    # on every step (--mask_replay: without it a few masks reach the loss too rarely, docs/benchmark.md).
    bench "${budget[@]}" --model saagan --prefix h128_masks --summary "$OUT/h128_masks.md" \
        -- "${TRAIN[@]}" --attention_prior masks
    bench "${budget[@]}" --model attentiongan saagan --prefix h128_masks10 --summary "$OUT/h128_masks10.md" \
        -- "${TRAIN[@]}" --attention_prior masks --mask_fraction 0.1 --mask_replay
    # The few-masks settings that met the target's values on (b) with 10%: discriminators shown the masked
    # objects (AGGAN keeps the background best, attentiongan translates best).
    bench "${budget[@]}" --model aggan attentiongan --prefix h128_masks10_dg --summary "$OUT/h128_masks10_dg.md" \
        -- "${TRAIN[@]}" --attention_prior masks --mask_fraction 0.1 --mask_replay --d_mask given --lambda_mask 10
    # The 2% recipe of (b) on top: recoloured replays, a heavier mask loss and the given-mask view after
    # a warm-up of a third of the epochs (3 of 10; 4 of 12 on (b)).
    bench "${budget[@]}" --model attentiongan --prefix h128_masks10_dgjw --summary "$OUT/h128_masks10_dgjw.md" \
        -- "${TRAIN[@]}" --attention_prior masks --mask_fraction 0.1 --mask_replay --d_mask given --lambda_mask 30 \
        --replay_jitter 0.5 --d_mask_warmup 3
}

synthetic() {
    # $1: overlapping (a) or distinct (b); 3000 images per model, the budget of the 64 px tables.
    local prefix=s128_${1}
    bench --backgrounds "$1" --model "${MODELS[@]}" --prefix "$prefix" --summary "$OUT/$prefix.md" \
        --leaderboard "$OUT/${prefix}_leaderboard" -- "${TRAIN[@]}"
}

case "${1:-}" in
    horse2zebra) horse2zebra ;;
    a) synthetic overlapping ;;
    b) synthetic distinct ;;
    all) horse2zebra; synthetic overlapping; synthetic distinct ;;
    *) echo "usage: bash scripts/benchmark_at_scale.sh horse2zebra|a|b|all" >&2; exit 2 ;;
esac
