"""Learning evidence and the family's leaderboard, measured the same way for every model.

Trains each model for the same number of images, translates the test set, and measures what the
attention papers claim: attention IoU and MAE against the ground-truth masks, background PSNR
(input vs output outside the mask) and foreground change (mean absolute change inside it),
and, with ``--classifier``, the target-domain rate and classifier-feature KID of the project's
domain classifier. Then writes a markdown summary (mean ± half-range over ``--seeds``) and,
with ``--leaderboard DIR``, the leaderboard of ``scripts/compare.py`` with key images.

    python scripts/attention_benchmark.py --model attentiongan --max_iters 3000
    python scripts/attention_benchmark.py --backgrounds distinct --seeds 0 1 --classifier auto \\
        --summary docs/benchmark_distinct.md --leaderboard results/leaderboard_distinct
    python scripts/attention_benchmark.py --dataroot ../shared/datasets/horse2zebra --classifier auto

Same rules for every model (the scaling rules, written once here):

- the same image budget, seeds and network: the reduced one on a CPU (ngf/ndf 16, ResNet-6;
  paired models a U-Net of the image size), ``--full_network`` for the papers' ngf/ndf 64,
  ResNet-9; each paper's recipe otherwise;
- the discriminators see the share of the image side that the papers' see (the 70x70 PatchGAN
  on 256 px images): ``--n_layers_D`` is the depth whose receptive field is nearest to 70/256 of
  ``--size`` (:func:`proportional_depth`: 1 at 64 px, 2 at 128, 3 at 256), for every PatchGAN
  of the family (SAAGAN's, UAIT's, AGGAN's pooled D and GuideGAN's PHA D take it too);
  ``--d_field fixed`` keeps the 70x70 PatchGAN at every size (the runs made before this rule).
  The multi-domain model keeps StarGAN's discriminator, which is built from the image size;
- schedules tied to a paper's epoch count are scaled to the budget and listed in the summary
  (:func:`budget_options`).

Each run is an ordinary ``checkpoints/<prefix>_<model>[_s<seed>]`` run, so an interrupted
benchmark resumes where it stopped (``--minutes`` stops each call with a resumable checkpoint);
the summary gives each run's training wall time over all calls, seconds per image and the
hardware. Extra ``train.py`` options follow ``--``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from data.synthetic import BACKGROUNDS, ensure_synthetic_dataset  # noqa: E402
from evaluation.leaderboard import mean_and_spread  # noqa: E402
from evaluation.run_records import (  # noqa: E402
    OPTIONAL_MEASURES,
    SETTINGS,
    SUMMARY_MEASURES,
    group_by_settings,
    load_records,
    measure_value,
    write_key_images,
    write_record,
)
from models import networks  # noqa: E402
from util.distributed import parse_gpu_ids  # noqa: E402
from util.checkpoint import atomic_write_text, load_checkpoint  # noqa: E402
from util.errors import UserError, run_cli  # noqa: E402
from util.precision import describe_hardware, resolve  # noqa: E402

# A network size a CPU trains in minutes at 64 px; the same for every model compared.
CPU_NETWORK = ["--ngf", "16", "--ndf", "16", "--netG", "resnet_6blocks"]
PAIRED_MODELS = ("pix2pix", "guidegan_paired")
UNPAIRED_MODELS = ("cycle_gan", "aggan", "attentiongan", "uait", "saagan", "guidegan")
OWN_DISCRIMINATOR_MODELS = ("attentiongan_multi",)  # StarGAN's D, sized by the image
# The papers' discriminators: the 70x70 PatchGAN (n_layers 3) on 256 px images.
PAPER_SIDE, PAPER_DEPTH = 256, 3


def proportional_depth(size: int) -> int:
    """The PatchGAN depth (``--n_layers_D``) whose receptive field is the share of a ``size`` px
    image side nearest to the papers' 70/256."""
    def field(depth: int) -> int:
        return networks.receptive_field(networks.patchgan_layers(depth))

    share = field(PAPER_DEPTH) / PAPER_SIDE
    depths = [d for d in range(1, 7) if networks.min_input_size(networks.patchgan_layers(d)) <= size]
    return min(depths, key=lambda depth: abs(field(depth) / size - share))


def discriminator_options(model: str, args: argparse.Namespace) -> list[str]:
    """``--netD n_layers --n_layers_D <proportional depth>`` unless ``--d_field fixed``."""
    if args.d_field == "fixed" or model in OWN_DISCRIMINATOR_MODELS:
        return []
    return ["--netD", "n_layers", "--n_layers_D", str(proportional_depth(args.size))]


def cpu_network(model: str, size: int) -> list[str]:
    """The reduced network for ``model``: paired models take a U-Net of the image size."""
    if model in PAIRED_MODELS:
        return ["--ngf", "16", "--ndf", "16", "--netG", f"unet_{size}"]
    if model == "uait":
        return [*CPU_NETWORK, "--ngf_attention", "16"]
    return CPU_NETWORK


def budget_options(model: str, args: argparse.Namespace) -> list[str]:
    """Schedules of a paper scaled to this budget (the same rule for every model):

    - AGGAN's curriculum, 10 of its 200 epochs, becomes 5% of the budget's epochs (at least 1);
    - UAIT's switch to masked discriminators comes at half the epochs, so stage 2 takes at
      least half the budget;
    - SAAGAN gets a CAM classifier trained on the same data first.
    """
    epochs = args.n_epochs + args.n_epochs_decay
    if model == "aggan":
        return ["--curriculum_epochs", str(max(1, round(0.05 * epochs)))]
    if model == "uait":
        return ["--switch_epoch", str(epochs // 2)]
    if model == "saagan":
        return ["--cam_classifier", str(cam_classifier(args))]
    return []


class StepFailed(Exception):
    """A script the benchmark called stopped with an error (its own message is above)."""

    def __init__(self, command: list[str], status: int) -> None:
        super().__init__(f"{Path(command[1]).name} stopped with exit status {status} (its message is above); "
                         "after fixing the cause, run the same benchmark command again: finished runs are kept "
                         "and an interrupted one resumes")
        self.status = status


def run(command: list[str]) -> None:
    print("+", " ".join(command), flush=True)
    status = subprocess.run(command, cwd=REPO_ROOT).returncode
    if status:
        raise StepFailed(command, status)


def dataset_name(args: argparse.Namespace) -> str:
    return Path(args.dataroot).resolve().name


def cam_classifier(args: argparse.Namespace) -> Path:
    """SAAGAN's CAM classifier for the benchmark's data (trained once)."""
    path = Path(args.checkpoints_dir) / f"cam_{dataset_name(args)}" / "classifier.pt"
    if not path.exists():
        run([sys.executable, "scripts/train_cam_classifier.py", "--dataroot", str(args.dataroot), "--out", str(path),
             "--gpu_ids", args.gpu_ids, "--no_progress"])
    return path


def domain_classifier(args: argparse.Namespace) -> Path | None:
    """``--classifier``: a file, ``auto`` (the project's classifier trained on the data once), or none."""
    if not args.classifier:
        return None
    if args.classifier != "auto":
        return Path(args.classifier)
    path = Path(args.checkpoints_dir) / "domain_classifier" / f"{dataset_name(args)}.pt"
    if not path.exists():
        run([sys.executable, "scripts/train_domain_classifier.py", "--dataroot", str(args.dataroot), "--out", str(path),
             "--gpu_ids", args.gpu_ids, "--no_progress"])
    return path


def run_name(model: str, seed: int, args: argparse.Namespace) -> str:
    return f"{args.prefix}_{model}" + (f"_s{seed}" if seed else "")


def run_options(model: str, seed: int, args: argparse.Namespace) -> list[str]:
    """What identifies the run and its networks: the same for train.py and test.py."""
    network = [] if args.full_network else cpu_network(model, args.size)
    return ["--model", model, "--name", run_name(model, seed, args), "--dataroot", str(args.dataroot),
            "--checkpoints_dir", str(args.checkpoints_dir), "--gpu_ids", args.gpu_ids, "--direction", args.direction,
            "--precision", args.precision, *network]


def train_arguments(model: str, seed: int, args: argparse.Namespace, adapted: list[str], extra: list[str]) -> list[str]:
    """train.py's arguments for one run (``adapted``: :func:`budget_options`; ``--continue_train`` not included)."""
    size = ["--load_size", str(args.size + args.size // 8), "--crop_size", str(args.size)]
    schedule = ["--max_dataset_size", str(args.epoch_size), "--n_epochs", str(args.n_epochs),
                "--n_epochs_decay", str(args.n_epochs_decay), "--seed", str(seed)]
    logging = ["--display_id", "0", "--print_freq", "100", "--display_freq", "500", "--save_epoch_freq", "1000"]
    budget = (["--max_iters", str(args.max_iters)] if args.max_iters else []) + (
        ["--time_limit", str(args.minutes)] if args.minutes else [])
    return [*run_options(model, seed, args), *schedule, *logging, *size, *discriminator_options(model, args), *adapted,
            *extra, *budget]


def benchmark_model(model: str, seed: int, args: argparse.Namespace, extra: list[str]) -> dict:
    """Train (or resume), test and evaluate one model; returns its metrics.json."""
    name = run_name(model, seed, args)
    run_dir = Path(args.checkpoints_dir) / name
    adapted = budget_options(model, args)
    train = [sys.executable, "train.py", *train_arguments(model, seed, args, adapted, extra)]
    command = " ".join(train[1:])
    if (run_dir / "latest.pt").exists():
        train.append("--continue_train")
    started = time.time()
    run(train)
    train_seconds = time.time() - started
    progress = load_checkpoint(run_dir / "latest.pt")["progress"]
    run([sys.executable, "test.py", *run_options(model, seed, args), "--results_dir", str(args.results_dir), "--num_test", "0",
         "--crop_size", str(args.size), "--no_progress", "--phase", args.phase])
    result_dir = Path(args.results_dir) / name / f"{args.phase}_latest"
    classifier = domain_classifier(args)
    run([sys.executable, "scripts/evaluate.py", "--results", str(result_dir), "--no_inception", "--no_progress",
         *(["--classifier", str(classifier)] if classifier else [])])
    metrics = json.loads((result_dir / "metrics.json").read_text())
    metrics["benchmark"] = {"model": model, "seed": seed, "train_seconds_this_call": round(train_seconds, 1),
                            "train_seconds": progress.get("train_seconds"), "images": progress["total_iters"],
                            "hardware": describe_hardware(training_device(args)), "machines": progress.get("machines"),
                            "precision": resolve(args.precision, training_device(args))[0],
                            "command": command,
                            "adapted": " ".join(adapted), "result_dir": str(result_dir)}
    return metrics


def training_device(args: argparse.Namespace) -> torch.device:
    """The device train.py runs on: the first of ``--gpu_ids`` where CUDA has it, else the CPU."""
    ids = parse_gpu_ids(args.gpu_ids)
    return torch.device(f"cuda:{ids[0]}" if ids and torch.cuda.is_available() else "cpu")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=list(UNPAIRED_MODELS), help="models to compare")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="one run per model and seed")
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
    parser.add_argument("--d_field", choices=("proportional", "fixed"), default="proportional",
                        help="proportional: discriminators see the papers' 70/256 of the image side (--n_layers_D by "
                             "--size); fixed: the 70x70 PatchGAN at every size")
    parser.add_argument("--classifier", default=None,
                        help="a domain classifier for evaluate.py, or auto: train the project's on --dataroot once")
    parser.add_argument("--gpu_ids", type=str, default="0")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                        help="for train.py and test.py; auto: bf16 where the hardware runs it fast, fp32 elsewhere")
    parser.add_argument("--prefix", type=str, default="bench")
    parser.add_argument("--phase", type=str, default="test", help="the split test.py translates (maps: val)")
    parser.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB", help="for train.py and test.py alike")
    parser.add_argument("--checkpoints_dir", type=Path, default=Path("checkpoints"))
    parser.add_argument("--results_dir", type=Path, default=Path("results"))
    parser.add_argument("--summary", type=Path, default=None, help="write the markdown summary here too")
    parser.add_argument("--record", type=Path, default=None,
                        help="also keep each run's record here (<run>.json, key images, masks over training): what "
                             "--from_records rebuilds the summary from once checkpoints/ and results/ are gone")
    parser.add_argument("--from_records", type=Path, nargs="+", default=None,
                        help="train nothing: the summary of these run records (one table per set of settings)")
    parser.add_argument("--leaderboard", type=Path, default=None,
                        help="write scripts/compare.py's leaderboard (per model over seeds, 4 key images each) here")
    return parser


def parse_arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The benchmark's own options, and the ``train.py`` options after ``--``."""
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    return build_parser().parse_args(argv[: argv.index("--")] if "--" in argv else argv), extra


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_arguments(list(sys.argv[1:] if argv is None else argv))
    try:
        return run_cli(lambda: benchmark(args, extra))
    except StepFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return err.status


def benchmark(args: argparse.Namespace, extra: list[str]) -> None:
    """Train, test and evaluate every model and seed (or read ``--from_records``), then write the summary."""
    if args.from_records:
        summary = summary_of_records(load_records(args.from_records))
    else:
        if args.record and Path(args.record).exists() and not Path(args.record).is_dir():
            raise UserError(f"--record {args.record} is a file: give a folder for the run records")
        if args.dataroot is None:
            suffix = "" if args.backgrounds == "overlapping" else f"_{args.backgrounds}"
            args.dataroot = ensure_synthetic_dataset(Path("datasets") / f"synthetic_{args.size}{suffix}",
                                                     size=args.size, backgrounds=args.backgrounds)
        rows = []
        for model in args.model:
            for seed in args.seeds:
                rows.append(benchmark_model(model, seed, args, extra))
                if args.record:
                    record_run(rows[-1], args, extra)
        summary = summarise(rows, args, extra)
        if args.leaderboard:
            run([sys.executable, "scripts/compare.py", *[row["benchmark"]["result_dir"] for row in rows], "--out",
                 str(args.leaderboard), "--group_by_model", "--key_images", "4"])
    print(summary)
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.summary, summary)


def run_settings(args: argparse.Namespace, extra: list[str]) -> dict:
    """The settings a run record keeps (:data:`evaluation.run_records.SETTINGS`)."""
    settings = {key: getattr(args, key) for key in SETTINGS if key != "extra"}
    return {**settings, "dataroot": str(args.dataroot), "extra": list(extra)}


def record_run(row: dict, args: argparse.Namespace, extra: list[str]) -> None:
    """``--record DIR``: the run's record, key images and, for attention models, its masks over training."""
    benchmark = row["benchmark"]
    name = run_name(benchmark["model"], benchmark["seed"], args)
    directory = Path(args.record).resolve()
    written = [write_record(directory, name, row, run_settings(args, extra)),
               write_key_images(directory, name, Path(benchmark["result_dir"]))]
    has_attention = any(measure_value(m, ("attention", "iou_mean")) is not None for m in row["directions"].values())
    if has_attention and any((Path(args.checkpoints_dir) / name).glob("epoch_*.pt")):
        plot = directory / f"{name}_attention.png"
        over_time = subprocess.run(
            [sys.executable, "scripts/attention_over_time.py", "--name", name, "--dataroot", str(args.dataroot),
             "--checkpoints_dir", str(args.checkpoints_dir), "--size", str(args.size), "--phase", args.phase,
             "--out", str(plot)], cwd=REPO_ROOT, capture_output=True, text=True)
        if over_time.returncode == 0:
            written += [plot, directory / f"{name}_attention.md"]
            report = over_time.stdout[max(0, over_time.stdout.find("Attention of")):]  # without the loading lines
            atomic_write_text(written[-1], report.replace(f"plot: {plot}", f"plot: {plot.name}"))
        else:
            print(f"warning: no masks over training for {name}: {over_time.stderr.strip()}", file=sys.stderr)
    print("recorded: " + ", ".join(str(path) for path in written if path), flush=True)


def summary_of_records(records: list[dict]) -> str:
    """One summary per set of records made with the same settings (``--from_records``)."""
    summaries = []
    for group in group_by_settings(records):
        settings = group[0]["settings"]
        namespace = argparse.Namespace(**{k: v for k, v in settings.items() if k != "extra"},
                                       seeds=sorted({record["benchmark"]["seed"] for record in group}))
        rows = [{"benchmark": record["benchmark"], "directions": record["directions"], "meta": record.get("meta") or {}}
                for record in group]
        summaries.append(summarise(rows, namespace, settings["extra"]))
    return "\n".join(summaries)


def summarise(rows: list[dict], args: argparse.Namespace, extra: list[str]) -> str:
    """A markdown table of the offline measures per model and direction (mean ± half-range over seeds)."""
    present = [c for c in OPTIONAL_MEASURES
               if any(measure_value(m, c[1]) is not None for row in rows for m in row["directions"].values())]
    columns = [*SUMMARY_MEASURES, *present]
    network = "" if args.full_network else " (ngf/ndf 16, resnet_6blocks; U-Net of the image size for paired models)"
    seeds = getattr(args, "seeds", [0])
    lines = [f"Dataset {args.dataroot} ({args.size} px); {image_budget(args)} training images per model"
             f"{network}; seeds {', '.join(map(str, seeds))}; extra train.py options: {' '.join(extra) or 'none'}", "",
             "| model | direction | " + " | ".join(name for name, _ in columns) + " |",
             "| --- | --- |" + " --- |" * len(columns)]
    grouped: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        for direction, m in row["directions"].items():
            grouped.setdefault((row["benchmark"]["model"], direction), []).append(m)
    for (model, direction), entries in grouped.items():
        cells = []
        for _, path in columns:
            mean, spread = mean_and_spread([measure_value(m, path) for m in entries])
            cells.append("-" if mean is None else f"{mean:.3f}" + (f" ± {spread:.3f}" if len(entries) > 1 else ""))
        lines.append(f"| {model} | {direction} | " + " | ".join(cells) + " |")
    adapted = {row["benchmark"]["model"]: row["benchmark"].get("adapted") for row in rows if row["benchmark"].get("adapted")}
    if adapted:
        lines += ["", "Schedules scaled to the budget: " + "; ".join(f"{m}: {a}" for m, a in adapted.items())]
    d_field = getattr(args, "d_field", "proportional")
    if d_field == "proportional":
        lines += ["", f"Discriminators: PatchGAN depth {proportional_depth(args.size)} at {args.size} px (the papers' "
                      f"70/256 of the image side; not for {', '.join(OWN_DISCRIMINATOR_MODELS)})"]
    else:
        lines += ["", "Discriminators: the 70x70 PatchGAN (--d_field fixed)"]
    accuracies = sorted({f"{held['accuracy']:.3f}" for row in rows
                         if (held := ((row.get("meta") or {}).get("classifier") or {}).get("accuracy") or {}).get("accuracy")
                         is not None})
    if accuracies:
        lines += ["", f"Domain classifier (target-domain rate, feature KID): held-out accuracy {', '.join(accuracies)}"
                      + (" (the runs were measured with different classifiers)" if len(accuracies) > 1 else "")]
    precisions = sorted({row["benchmark"]["precision"] for row in rows if row["benchmark"].get("precision")})
    if len(precisions) > 1:
        lines += ["", f"Precision: the runs trained in {', '.join(precisions)} (`--precision auto` resolves by "
                      "machine; a spread over seeds then mixes seed and precision)"]
    timed = [row["benchmark"] for row in rows if row["benchmark"].get("train_seconds")]
    if timed:
        lines += ["", "Training time (wall clock over all calls, start-up excluded):", ""]
        lines += [f"- {b['model']} (seed {b['seed']}): {format_duration(b['train_seconds'])} for {b['images']} images, "
                  + machine_speeds(b) + (f", {b['precision']}" if b.get("precision") else "") for b in timed]
    lines += ["", "Commands:", ""] + [f"    python {row['benchmark']['command']}" for row in rows]
    return "\n".join(lines) + "\n"


def image_budget(args: argparse.Namespace) -> str:
    """``--max_iters``, or without it the schedule's epochs times the epoch size."""
    if args.max_iters:
        return str(args.max_iters)
    epochs = getattr(args, "n_epochs", 0) + getattr(args, "n_epochs_decay", 0)
    size = getattr(args, "epoch_size", 0)
    return f"{epochs * size} ({epochs} epochs of {size})" if epochs and size else "-"


def machine_speeds(benchmark: dict) -> str:
    """Seconds per image and the machine; per machine where the run was resumed on more than one."""
    machines = benchmark.get("machines") or {}
    if len(machines) <= 1:
        machine = next(iter(machines), benchmark["hardware"])
        return f"{benchmark['train_seconds'] / max(1, benchmark['images']):.3f} s/img on {machine}"
    return "resumed across machines: " + "; ".join(
        f"{entry['seconds'] / max(1, entry['images']):.3f} s/img for {entry['images']} images on {name}"
        for name, entry in machines.items())


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


if __name__ == "__main__":
    sys.exit(main())
