"""The GPU check in one command, for the day a GPU is lent (``bash scripts/gpu_check.sh``):

    python scripts/gpu_check.py                    # every model, 256 px, writes docs/performance_gpu.md
    python scripts/gpu_check.py --models cycle_gan attentiongan --size 128 --out /tmp/gpu.md

1. a few training steps of every registered model on CUDA at ``--size`` in fp32, bf16 and fp16
   (``scripts/benchmark_speed.py``'s measurement: s/step, images/s, peak memory), and for
   ``--compile_models`` also with ``--compile``, ``--channels_last`` and both (bf16);
2. a 2-process ``torchrun`` on nccl when there are two or more GPUs;
3. a finite-loss and resume check: ``train.py`` runs 2N images straight, and N then N more
   with ``--continue_train``; the losses must be finite and the two runs' weights must agree;
4. ``--out`` (docs/performance_gpu.md): the table, the checks and the command, rewritten
   (atomically) after every configuration, so a lease that ends early still leaves what was measured.

Configurations are measured until ``--budget_minutes`` (8) is spent; what did not fit is listed. A
configuration that outlasts ``--config_timeout`` seconds (a compile that hangs) is an error row.
Without CUDA it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

PRECISIONS = ("fp32", "bf16", "fp16")
OPTION_SETS = ("compile", "channels_last", "channels_last+compile")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=None, help="default: every registered model")
    parser.add_argument("--compile_models", nargs="+", default=["cycle_gan", "attentiongan"],
                        help="also measured with --compile / --channels_last (bf16)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation happens here)")
    parser.add_argument("--budget_minutes", type=float, default=8.0, help="stop starting configurations after this")
    parser.add_argument("--config_timeout", type=float, default=300.0, help="seconds one configuration may take")
    parser.add_argument("--resume_images", type=int, default=4, help="N of the resume check (2N images in all)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "performance_gpu.md")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("budget_minutes", "config_timeout", "steps", "resume_images"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} {getattr(args, name)}: must be > 0")
    return args


def configurations(args: argparse.Namespace, models: list[str]) -> list[dict[str, Any]]:
    """What to measure, most important first (the budget may cut the tail)."""
    common = {"size": args.size, "steps": args.steps, "warmup": args.warmup, "dataroot": None, "num_threads": None,
              "gpu_ids": "0", "no_loader": True, "loader_only": False, "network": "", "batch_size": 1}
    configs = [{**common, "model": m, "options": "none", "precision": p} for m in models for p in PRECISIONS]
    configs += [{**common, "model": m, "options": o, "precision": "bf16"}
                for m in args.compile_models if m in models for o in OPTION_SETS]
    return configs


def run(command: list[str], timeout: float) -> tuple[bool, str]:
    try:
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f}s"
    tail = " / ".join((done.stderr or done.stdout).strip().splitlines()[-2:])
    return done.returncode == 0, tail


def resume_check(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """2N images straight against N + N with --continue_train: finite losses, weights that agree."""
    import torch

    n = args.resume_images
    common = [sys.executable, "train.py", "--model", "attentiongan", "--gpu_ids", "0", "--precision", "bf16",
              "--crop_size", str(args.size), "--load_size", str(args.size + args.size // 8), "--display_id", "0",
              "--no_progress", "--checkpoints_dir", str(work), "--max_dataset_size", str(2 * n), "--n_epochs", "1",
              "--n_epochs_decay", "0", "--print_freq", "1", "--save_latest_freq", str(n)]
    started = time.time()
    for command in ([*common, "--name", "straight"], [*common, "--name", "split", "--max_iters", str(n)],
                    [*common, "--name", "split", "--continue_train"]):
        ok, tail = run(command, 600)
        if not ok:
            return {"check": "finite losses and resume (attentiongan, bf16)", "ok": False, "detail": tail}
    records = [json.loads(line) for line in (work / "split" / "loss_log.jsonl").read_text().splitlines()]
    finite = all(math.isfinite(v) for r in records for v in r["losses"].values())
    a = torch.load(work / "straight" / "latest.pt", map_location="cpu", weights_only=True)["state"]["networks"]
    b = torch.load(work / "split" / "latest.pt", map_location="cpu", weights_only=True)["state"]["networks"]
    worst = max(float((a[n_][k].float() - b[n_][k].float()).abs().max()) for n_ in a for k in a[n_]
                if a[n_][k].is_floating_point())
    return {"check": "finite losses and resume (attentiongan, bf16)", "ok": finite and worst < 1e-3,
            "detail": f"{len(records)} loss records, all finite: {finite}; largest weight difference straight vs "
                      f"resumed: {worst:.2e} (cuDNN kernels need not be bit-exact)",
            "seconds": round(time.time() - started, 1)}


def torchrun_check(args: argparse.Namespace, work: Path, gpus: int) -> dict[str, Any]:
    if gpus < 2:
        return {"check": "torchrun, 2 processes on nccl", "ok": None, "detail": f"skipped: {gpus} GPU"}
    started = time.time()
    ok, tail = run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "train.py", "--model",
                    "cycle_gan", "--crop_size", str(args.size), "--load_size", str(args.size + args.size // 8),
                    "--display_id", "0", "--no_progress", "--checkpoints_dir", str(work), "--name", "ddp",
                    "--max_dataset_size", "8", "--n_epochs", "1", "--n_epochs_decay", "0"], 600)
    return {"check": "torchrun, 2 processes on nccl", "ok": ok, "detail": tail[-200:], "seconds": round(time.time() - started, 1)}


def report(meta: dict[str, Any], table: str, checks: list[dict[str, Any]], skipped: list[dict[str, Any]],
           pending: int = 0) -> str:
    """docs/performance_gpu.md: the device, the command, the speed table and the checks; ``pending``
    configurations still to measure mark the report as partial."""
    lines = ["# On a GPU: every model, every precision", "",
             f"Device: {meta['device']}; torch {meta['torch']}; CUDA {meta['cuda']}; {meta['date']}.", "",
             "Command:", "", f"    {meta['command']}", "", table.rstrip(), ""]
    if pending or not checks:
        lines += [f"Partial report: {pending} configurations still to measure; the checks have not run yet.", ""]
    if skipped:
        lines += ["Not measured (the time budget ran out): " + ", ".join(
            f"{c['model']} {c['precision']} {c['options']}" for c in skipped), ""]
    lines += ["| check | result | detail |", "| --- | --- | --- |"]
    for check in checks:
        verdict = "skipped" if check["ok"] is None else ("passed" if check["ok"] else "FAILED")
        lines.append(f"| {check['check']} | {verdict} | {check['detail']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device here: the GPU check needs one; nothing was run")
        return 0
    from models import available_models
    from scripts.benchmark_speed import run_config, table

    from util.checkpoint import atomic_write_text

    models = args.models or [m for m in available_models() if m != "test"]
    meta = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
            "date": time.strftime("%Y-%m-%d"), "command": "python scripts/gpu_check.py " + " ".join(argv or sys.argv[1:])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    configs = configurations(args, models)
    started, results, skipped = time.time(), [], []
    for done, config in enumerate(configs, 1):
        if time.time() - started > args.budget_minutes * 60:
            skipped.append(config)
            continue
        print(f"measuring {config['model']} {config['precision']} {config['options']}", flush=True)
        results.append(run_config(config, timeout=args.config_timeout))
        atomic_write_text(args.out, report(meta, table(results, loader_only=False), [], skipped, len(configs) - done))
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as work:
        checks = [resume_check(args, Path(work) / "resume"), torchrun_check(args, Path(work) / "ddp", torch.cuda.device_count())]
    text = report(meta, table(results, loader_only=False), checks, skipped)
    atomic_write_text(args.out, text)
    print(text)
    failed = [c for c in checks if c["ok"] is False] or [r for r in results if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
