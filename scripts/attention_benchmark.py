"""Learning evidence on the built-in synthetic dataset, where the ground truth is exact.

Trains a model for a given number of images (or minutes), translates the synthetic test
set, and measures what the attention papers claim: attention IoU and MAE against the
exact object masks, background PSNR (input vs output outside the mask) and foreground
change (mean absolute change inside it). Then writes a markdown summary.

    python scripts/attention_benchmark.py --model attentiongan --max_iters 3000
    python scripts/attention_benchmark.py --model cycle_gan aggan attentiongan --max_iters 3000 \
        --summary docs/benchmark_cpu_64px.md

Each model is an ordinary run (``checkpoints/bench_<model>``), so an interrupted benchmark
resumes where it stopped when started again. Extra ``train.py`` options follow ``--``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from data.synthetic import BACKGROUNDS, ensure_synthetic_dataset  # noqa: E402

# A network size a CPU trains in minutes at 64 px; the same for every model compared.
CPU_NETWORK = ["--ngf", "16", "--ndf", "16", "--netG", "resnet_6blocks"]
PAIRED_MODELS = ("pix2pix", "guidegan_paired")


def cpu_network(model: str, size: int) -> list[str]:
    """The reduced network for ``model``: paired models take a U-Net of the image size."""
    if model in PAIRED_MODELS:
        return ["--ngf", "16", "--ndf", "16", "--netG", f"unet_{size}"]
    return CPU_NETWORK


def run(command: list[str]) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, cwd=REPO_ROOT, check=True)


def benchmark_model(model: str, args: argparse.Namespace, extra: list[str]) -> dict:
    """Train (or resume), test and evaluate one model; returns its metrics.json."""
    name = f"{args.prefix}_{model}"
    size = ["--load_size", str(args.size + args.size // 8), "--crop_size", str(args.size)]
    network = [] if args.full_network else cpu_network(model, args.size)
    run_dir = Path(args.checkpoints_dir) / name
    # What identifies the run and its networks: the same for train.py and test.py.
    run_options = ["--model", model, "--name", name, "--dataroot", str(args.dataroot), "--checkpoints_dir",
                   str(args.checkpoints_dir), "--gpu_ids", args.gpu_ids, *network]
    schedule = ["--max_dataset_size", str(args.epoch_size), "--n_epochs", str(args.n_epochs),
                "--n_epochs_decay", str(args.n_epochs_decay)]
    logging = ["--display_id", "0", "--print_freq", "100", "--display_freq", "500", "--save_epoch_freq", "1000"]
    train = [sys.executable, "train.py", *run_options, *schedule, *logging, *size, *extra]
    if args.max_iters:
        train += ["--max_iters", str(args.max_iters)]
    if args.minutes:
        train += ["--time_limit", str(args.minutes)]
    command = " ".join(train[1:])
    if (run_dir / "latest.pt").exists():
        train.append("--continue_train")
    started = time.time()
    run(train)
    train_seconds = time.time() - started
    run([sys.executable, "test.py", *run_options, "--results_dir", str(args.results_dir), "--num_test", "0",
         "--crop_size", str(args.size), "--no_progress", "--phase", args.phase])
    result_dir = Path(args.results_dir) / name / f"{args.phase}_latest"
    run([sys.executable, "scripts/evaluate.py", "--results", str(result_dir), "--no_inception"])
    metrics = json.loads((result_dir / "metrics.json").read_text())
    metrics["benchmark"] = {"model": model, "train_seconds_this_call": round(train_seconds, 1), "command": command}
    return metrics


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=["cycle_gan", "aggan", "attentiongan", "uait", "saagan", "guidegan"],
                        help="models to compare")
    parser.add_argument("--size", type=int, default=64, help="image size (the dataset is generated at this size)")
    parser.add_argument("--dataroot", type=Path, default=None,
                        help="default: datasets/synthetic_<size>[_distinct], generated if absent")
    parser.add_argument("--backgrounds", choices=BACKGROUNDS, default="overlapping",
                        help="the built-in dataset's backgrounds: overlapping, or distinct (the hard-background setting)")
    parser.add_argument("--max_iters", type=int, default=3000, help="training images per model (0: no limit)")
    parser.add_argument("--minutes", type=float, default=0, help="or a time budget per model")
    parser.add_argument("--epoch_size", type=int, default=250, help="images per epoch (--max_dataset_size)")
    parser.add_argument("--n_epochs", type=int, default=8)
    parser.add_argument("--n_epochs_decay", type=int, default=4)
    parser.add_argument("--full_network", action="store_true", help="the papers' ngf/ndf 64, 9 blocks (GPU)")
    parser.add_argument("--gpu_ids", type=str, default="0")
    parser.add_argument("--prefix", type=str, default="bench")
    parser.add_argument("--phase", type=str, default="test", help="the split test.py translates (maps: val)")
    parser.add_argument("--checkpoints_dir", type=Path, default=Path("checkpoints"))
    parser.add_argument("--results_dir", type=Path, default=Path("results"))
    parser.add_argument("--summary", type=Path, default=None, help="write the markdown summary here too")
    args = parser.parse_args(argv)
    if args.dataroot is None:
        suffix = "" if args.backgrounds == "overlapping" else f"_{args.backgrounds}"
        args.dataroot = ensure_synthetic_dataset(Path("datasets") / f"synthetic_{args.size}{suffix}", size=args.size,
                                                 backgrounds=args.backgrounds)
    rows = [benchmark_model(model, args, extra) for model in args.model]
    summary = summarise(rows, args, extra)
    print(summary)
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(summary)
    return 0


def summarise(rows: list[dict], args: argparse.Namespace, extra: list[str]) -> str:
    """A markdown table of the offline measures per model and direction (from each metrics.json)."""
    network = "" if args.full_network else " (ngf/ndf 16, resnet_6blocks; U-Net of the image size for paired models)"
    paired = any((m.get("paired") or {}).get("psnr_mean") is not None for row in rows for m in row["directions"].values())
    extra_head = " paired PSNR (dB) | paired SSIM |" if paired else ""
    lines = [f"Dataset {args.dataroot} ({args.size} px); {args.max_iters or '-'} training images per model"
             f"{network}; extra train.py options: {' '.join(extra) or 'none'}", "",
             "| model | direction | attention IoU | attention MAE | background PSNR (dB) | background L1 | foreground change |"
             + extra_head,
             "| --- | --- | --- | --- | --- | --- | --- |" + (" --- | --- |" if paired else "")]
    for row in rows:
        for direction, m in row["directions"].items():
            attention, background, truth = m.get("attention") or {}, m.get("background") or {}, m.get("paired") or {}
            cells = [attention.get("iou_mean"), attention.get("mae_mean"), background.get("psnr_mean"),
                     background.get("l1_mean"), background.get("foreground_l1_mean")]
            if paired:
                cells += [truth.get("psnr_mean"), truth.get("ssim_mean")]
            text = ["-" if value is None else f"{value:.3f}" for value in cells]
            lines.append(f"| {row['benchmark']['model']} | {direction} | " + " | ".join(text) + " |")
    lines += ["", "Commands:", ""] + [f"    python {row['benchmark']['command']}" for row in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
