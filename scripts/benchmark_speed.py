"""Training speed per model, precision and option set, measured in one run, as a markdown table.

    python scripts/benchmark_speed.py --model cycle_gan attentiongan aggan --size 128 --precision fp32 bf16
    python scripts/benchmark_speed.py --model cycle_gan --size 256 --precision fp32 bf16 \\
        --option_sets none channels_last compile channels_last+compile --batch_size 1 4
    python scripts/benchmark_speed.py --loader_only --dataroot ../shared/datasets/horse2zebra --size 256

For every configuration a fresh process builds the model with train.py's options, runs
``--warmup`` steps, then times ``--steps`` training steps (``BaseModel.train_step``, the
step train.py runs) twice: on fixed random tensors (the network cost alone) and on batches
from the real data loader (``--dataroot``, default: the built-in synthetic dataset at
``--size``), so a starving loader shows as a gap between the two columns. It reports
images/s, seconds per step, peak memory (the process's peak RSS on the CPU, max allocated
on CUDA) and the speedup over fp32 with the same model, options and batch size.
``--loader_only`` measures the data loader alone (samples/s, each an A and a B image with
their masks, with ``--num_threads`` workers).

Time it on a quiet machine: two torch processes on a 2-core CPU slow each other many times.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=["cycle_gan", "attentiongan", "aggan"])
    parser.add_argument("--size", type=int, default=128, help="image side (crop size)")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--option_sets", nargs="+", default=["none"],
                        help="train.py switches per set, joined by +, without dashes: none, channels_last, compile, "
                        "channels_last+compile")
    parser.add_argument("--batch_size", nargs="+", type=int, default=[1])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation happens here)")
    parser.add_argument("--dataroot", type=str, default=None, help="data for the loader column (default: built-in synthetic)")
    parser.add_argument("--num_threads", type=int, default=None, help="loader workers (default: train.py's)")
    parser.add_argument("--gpu_ids", type=str, default="0", help="-1 for the CPU")
    parser.add_argument("--no_loader", action="store_true", help="skip the real-loader measurement")
    parser.add_argument("--loader_only", action="store_true", help="measure only the data loader")
    parser.add_argument("--network", type=str, default="",
                        help='options that set the network size, e.g. "--ngf 16 --netG resnet_6blocks"')
    parser.add_argument("--out", type=Path, default=None, help="also write the table (markdown) here")
    parser.add_argument("--worker", type=str, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ------------------------------------------------------------------ measurement (in a fresh process)
def train_options(config: dict[str, Any]) -> list[str]:
    """train.py options for one configuration."""
    size = str(config["size"])
    options = ["--model", config["model"], "--gpu_ids", config["gpu_ids"], "--display_id", "0", "--crop_size", size,
               "--load_size", str(config["size"] + config["size"] // 8), "--batch_size", str(config["batch_size"]),
               "--precision", config["precision"], "--no_progress"]
    if config["dataroot"]:
        options += ["--dataroot", config["dataroot"]]
    if config["num_threads"] is not None:
        options += ["--num_threads", str(config["num_threads"])]
    switches = [f"--{name}" for name in config["options"].split("+") if name and name != "none"]
    return options + model_needs(config) + shlex.split(config["network"]) + switches


def model_needs(config: dict[str, Any]) -> list[str]:
    """What a model needs beyond the common options to be timed on fixed tensors: a U-Net of the
    image size for the paired models, a (random) CAM classifier for SAAGAN."""
    model = config["model"]
    if model in ("pix2pix", "guidegan_paired") and "--netG" not in config["network"]:
        return ["--netG", f"unet_{config['size']}"]
    if model == "saagan":
        from models.classifier import DomainClassifier, classifier_checkpoint
        from util.checkpoint import atomic_save

        path = Path(tempfile.mkdtemp(prefix="speed_cam_")) / "classifier.pt"
        atomic_save(classifier_checkpoint(DomainClassifier(128, n_classes=2), {}, {"accuracy": None}, {"A": "A", "B": "B"}),
                    path)
        return ["--cam_classifier", str(path)]
    return []


def peak_memory_mb(device: Any) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(model: Any, batches: Any, steps: int, device: Any) -> float:
    """Seconds per step over ``steps`` steps drawn from the iterator ``batches``."""
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_step(next(batches))
    synchronize(device)
    return (time.perf_counter() - started) / steps


def endless(loader: Any) -> Any:
    epoch = 1
    while True:
        yield from loader.epoch(epoch)
        epoch += 1


def measure(config: dict[str, Any]) -> dict[str, Any]:
    """Build the model and time it on fixed tensors and on the loader (runs in the worker process)."""
    import itertools

    import torch

    from data import EpochLoader, create_dataset, resolve_dataroot
    from models import create_model
    from options import parse_train_options
    from util.distributed import select_device

    opt = parse_train_options(train_options(config))
    device = select_device(opt.gpu_ids)
    torch.manual_seed(0)
    result: dict[str, Any] = {"config": config, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    if config["loader_only"]:
        resolve_dataroot(opt)
        loader = EpochLoader(create_dataset(opt), opt)
        batches = endless(loader)
        for _ in range(config["warmup"]):
            next(batches)
        started = time.perf_counter()
        for _ in range(config["steps"]):
            next(batches)
        seconds = (time.perf_counter() - started) / config["steps"]
        return {**result, "loader_images_per_s": config["batch_size"] / seconds}
    b, s = config["batch_size"], config["size"]
    fixed = {"A": torch.rand(b, opt.input_nc, s, s) * 2 - 1, "B": torch.rand(b, opt.output_nc, s, s) * 2 - 1}
    if opt.model == "attentiongan_multi":  # three domains, each image sent to the next one
        opt.domain_names = ["d0", "d1", "d2"]
        fixed["A_domain"], fixed["target_domain"] = torch.arange(b) % 3, (torch.arange(b) + 1) % 3
    model = create_model(opt.model, opt, device)
    model.setup()
    model.set_mode(True)
    for side in "AB":
        fixed[f"{side}_mask"] = torch.zeros(b, 1, s, s)
        fixed[f"{side}_has_mask"] = torch.zeros(b, dtype=torch.bool)
        fixed[f"{side}_paths"] = [f"fixed_{i}" for i in range(b)]
    fixed["index"] = torch.arange(b)
    tensors = itertools.repeat(fixed)
    for _ in range(config["warmup"]):
        model.train_step(next(tensors))
    result["seconds_per_step"] = timed_steps(model, tensors, config["steps"], device)
    if not config["no_loader"]:
        resolve_dataroot(opt)
        batches = endless(EpochLoader(create_dataset(opt), opt))
        next(batches)  # start the workers
        result["loader_seconds_per_step"] = timed_steps(model, batches, config["steps"], device)
    result["peak_memory_mb"] = peak_memory_mb(device)
    return result


# ------------------------------------------------------------------ driver
def run_config(config: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """Measure one configuration in its own process (its own peak memory and compile cache); a
    configuration that outlasts ``timeout`` seconds is reported as an error, not waited for."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(config)]
    try:
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"config": config, "error": f"timed out after {timeout:.0f}s"}
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"config": config, "error": " / ".join(tail)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(results: list[dict[str, Any]], loader_only: bool) -> str:
    if loader_only:
        lines = ["| data | size | batch | workers | loader samples/s (A, B and their masks) |", "| --- | --- | --- | --- | --- |"]
        for r in results:
            c = r["config"]
            lines.append(f"| {c['dataroot'] or 'synthetic'} | {c['size']} | {c['batch_size']} | {c['num_threads']} | "
                         f"{r.get('error') or fmt(r.get('loader_images_per_s'), 1)} |")
        return "\n".join(lines) + "\n"
    baseline = {}
    for r in results:
        c = r["config"]
        if c["precision"] == "fp32" and "seconds_per_step" in r:
            baseline[(c["model"], c["options"], c["batch_size"])] = r["seconds_per_step"]
    lines = ["| model | options | batch | precision | s/step (tensors) | images/s (tensors) | s/step (loader) | "
             "peak memory (MiB) | speedup over fp32, same options | over plain fp32 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        c = r["config"]
        head = f"| {c['model']} | {c['options']} | {c['batch_size']} | {c['precision']} |"
        if "error" in r:
            lines.append(f"{head} error: {r['error'][:120]} | | | | | |")
            continue
        step = r["seconds_per_step"]
        base = baseline.get((c["model"], c["options"], c["batch_size"]))
        plain = baseline.get((c["model"], "none", c["batch_size"]))
        lines.append(f"{head} {fmt(step, 3)} | {fmt(c['batch_size'] / step)} | {fmt(r.get('loader_seconds_per_step'), 3)} | "
                     f"{fmt(r['peak_memory_mb'], 0)} | {fmt(base / step) + 'x' if base else '-'} | "
                     f"{fmt(plain / step) + 'x' if plain else '-'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(measure(json.loads(args.worker))))
        return 0
    common = {"size": args.size, "steps": args.steps, "warmup": args.warmup, "dataroot": args.dataroot,
              "num_threads": args.num_threads, "gpu_ids": args.gpu_ids, "no_loader": args.no_loader,
              "loader_only": args.loader_only, "network": args.network}
    configs = []
    for batch_size in args.batch_size:
        if args.loader_only:
            configs.append({**common, "model": "cycle_gan", "options": "none", "precision": "fp32", "batch_size": batch_size})
            continue
        for model in args.model:
            for options in args.option_sets:
                for precision in args.precision:
                    configs.append({**common, "model": model, "options": options, "precision": precision,
                                    "batch_size": batch_size})
    results = []
    for config in configs:
        print(f"measuring {json.dumps({k: config[k] for k in ('model', 'options', 'precision', 'batch_size')})}",
              file=sys.stderr, flush=True)
        results.append(run_config(config))
    device = next((r.get("device") for r in results if r.get("device")), "?")
    header = (f"Device: {device}; {args.size} px; {args.steps} timed steps after {args.warmup} warm-up steps; "
              f"network options: {args.network or 'the defaults'}.\n\n")
    text = header + table(results, args.loader_only)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
