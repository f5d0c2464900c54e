"""Train a model: ``python train.py --dataroot ./datasets/horse2zebra --name h2z --model cycle_gan``.

Without ``--dataroot`` the built-in synthetic dataset is used (generated on first use).
Every epoch ends with ``checkpoints/NAME/latest.pt`` (and ``epoch_N.pt`` every
``--save_epoch_freq`` epochs); ``--continue_train`` resumes exactly where it stopped.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from data import create_dataloader, create_dataset, resolve_dataroot
from models import BaseModel, create_model
from options import parse_train_options
from options.base_options import format_options, save_options, select_device
from util.checkpoint import (
    FORMAT_VERSION,
    atomic_save,
    capture_rng_state,
    check_architecture,
    checkpoint_path,
    load_checkpoint,
    restore_rng_state,
)
from util.errors import UserError, run_cli
from util.visualizer import TrainingVisualizer


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_checkpoint(path: Path, model: BaseModel, opt: argparse.Namespace, progress: dict[str, int]) -> None:
    """Everything needed to resume: see util/checkpoint.py."""
    options = {k: v for k, v in vars(opt).items() if isinstance(v, (int, float, str, bool, list, type(None)))}
    atomic_save(
        {
            "format_version": FORMAT_VERSION,
            "model": opt.model,
            "architecture": model.architecture(),
            "options": options,
            "progress": progress,
            "state": model.training_state(),
            "rng": capture_rng_state(),
        },
        path,
    )


def crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of ``every`` lies in (before, after]: frequencies work for any batch size."""
    return every > 0 and after // every > before // every


def budget_spent(opt: argparse.Namespace, run_started: float, total_iters: int) -> str:
    """Which of ``--time_limit`` / ``--max_iters`` is used up ('' if neither)."""
    if opt.max_iters > 0 and total_iters >= opt.max_iters:
        return f"--max_iters {opt.max_iters}"
    if opt.time_limit > 0 and time.time() - run_started >= opt.time_limit * 60:
        return f"--time_limit {opt.time_limit} min"
    return ""


def train(opt: argparse.Namespace) -> Path:
    """Run (or resume) training; returns the run folder."""
    resolve_dataroot(opt)
    device = select_device(opt.gpu_ids)
    run_dir = Path(opt.checkpoints_dir) / opt.name
    progress = {"epoch": opt.epoch_count, "batch": 0, "total_iters": 0}
    checkpoint = None
    if opt.continue_train:
        path = checkpoint_path(run_dir, opt.epoch)
        checkpoint = load_checkpoint(path)
        if checkpoint["model"] != opt.model:
            raise UserError(f"checkpoint {path} belongs to --model {checkpoint['model']}, not --model {opt.model}")
        opt.epoch_count = checkpoint["options"].get("epoch_count", opt.epoch_count)
        progress = checkpoint["progress"]
    elif (run_dir / "latest.pt").exists():
        raise UserError(
            f"run {run_dir} already has checkpoints; pass --continue_train to resume it, "
            f"or choose a new --name (delete the folder to start over)"
        )

    seed_everything(opt.seed)
    dataset = create_dataset(opt)
    model = create_model(opt.model, opt, device)
    model.setup()
    if checkpoint is not None:
        check_architecture(checkpoint["architecture"], model.architecture(), checkpoint_path(run_dir, opt.epoch))
        model.load_training_state(checkpoint["state"])
        restore_rng_state(checkpoint["rng"])
        print(
            f"resuming {opt.name} at epoch {progress['epoch']}, batch {progress['batch']} "
            f"({progress['total_iters']} images seen), lr {model.current_lr():.7f}"
        )
    save_options(opt, run_dir, "train")
    print(format_options(opt) if opt.verbose else f"options saved to {run_dir / 'train_opt.txt'}")
    visualizer = TrainingVisualizer(opt, run_dir, progress["total_iters"] if checkpoint is not None else None)

    last_epoch = opt.n_epochs + opt.n_epochs_decay
    run_started = time.time()
    batches_per_epoch = math.ceil(len(dataset) / opt.batch_size)
    total_iters = progress["total_iters"]
    for epoch in range(progress["epoch"], last_epoch + 1):
        start_batch = progress["batch"] if epoch == progress["epoch"] else 0
        model.on_epoch_start(epoch)
        model.set_mode(True)
        loader = create_dataloader(dataset, opt, epoch=epoch, start_batch=start_batch)
        bar = tqdm(
            total=len(dataset),
            initial=min(len(dataset), start_batch * opt.batch_size),
            unit="img",
            desc=f"epoch {epoch}/{last_epoch}",
            disable=opt.no_progress,
            dynamic_ncols=True,
        )
        started, images_this_epoch = time.time(), 0
        for batch_index, batch in enumerate(loader, start=start_batch + 1):
            model.set_input(batch)
            losses = model.optimize_parameters()
            size = batch["A"].shape[0]
            before, total_iters = total_iters, total_iters + size
            images_this_epoch += size
            bar.update(size)
            if crossed(before, total_iters, opt.print_freq):
                seconds = (time.time() - started) / images_this_epoch
                line = visualizer.log_losses(
                    epoch=epoch,
                    epoch_progress=batch_index / batches_per_epoch,
                    total_iters=total_iters,
                    losses=losses,
                    lr=model.current_lr(),
                    seconds_per_image=seconds,
                )
                bar.write(line) if opt.no_progress else bar.set_postfix_str(line.split(") ", 1)[-1][:80])
            if crossed(before, total_iters, opt.display_freq):
                visualizer.display(model.current_visuals(), epoch)
            out_of_budget = budget_spent(opt, run_started, total_iters)
            if (crossed(before, total_iters, opt.save_latest_freq) or out_of_budget) and batch_index < batches_per_epoch:
                save_checkpoint(
                    run_dir / "latest.pt", model, opt, {"epoch": epoch, "batch": batch_index, "total_iters": total_iters}
                )
            if out_of_budget and batch_index < batches_per_epoch:
                bar.close()
                print(
                    f"stopping at {out_of_budget} (epoch {epoch}, batch {batch_index}, {total_iters} images); "
                    f"resume with --continue_train"
                )
                return run_dir
        bar.close()
        model.update_learning_rate()
        for message in model.epoch_diagnostics():
            warnings.warn(f"epoch {epoch}: {message}", stacklevel=1)
        done = {"epoch": epoch + 1, "batch": 0, "total_iters": total_iters}
        save_checkpoint(run_dir / "latest.pt", model, opt, done)
        if epoch % opt.save_epoch_freq == 0 or epoch == last_epoch:
            save_checkpoint(run_dir / f"epoch_{epoch}.pt", model, opt, done)
        visualizer.save_loss_curve()
        print(
            f"end of epoch {epoch}/{last_epoch}: {time.time() - started:.1f}s, "
            f"{total_iters} images seen, lr now {model.current_lr():.7f}"
        )
        out_of_budget = budget_spent(opt, run_started, total_iters)
        if out_of_budget and epoch < last_epoch:
            print(f"stopping at {out_of_budget} after epoch {epoch}; resume with --continue_train")
            return run_dir
    if progress["epoch"] > last_epoch:
        print(f"{opt.name} already finished its {last_epoch} epochs; raise --n_epochs/--n_epochs_decay to train more")
    print(f"checkpoints: {run_dir}; training page: {run_dir / 'web' / 'index.html'}")
    return run_dir


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(
        lambda: train(parse_train_options(argv)), interrupted_hint="resume with --continue_train (the last checkpoint is intact)"
    )


if __name__ == "__main__":
    sys.exit(main())
