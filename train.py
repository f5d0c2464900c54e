"""Train a model: ``python train.py --dataroot ./datasets/horse2zebra --name h2z --model cycle_gan``.

Without ``--dataroot`` the built-in synthetic dataset is used (generated on first use).
Every epoch ends with ``checkpoints/NAME/latest.pt`` (and ``epoch_N.pt`` every
``--save_epoch_freq`` epochs); ``--continue_train`` resumes exactly where it stopped.
``torchrun --nproc_per_node N train.py ...`` trains data-parallel on N processes (see
``util/distributed.py``); counters, frequencies and ``--max_iters`` count images over all of them.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from data import EpochLoader, create_dataset, resolve_dataroot
from models import BaseModel, NonFiniteLoss, create_model
from options import parse_train_options
from options.base_options import format_options, save_options
from util import distributed
from util.checkpoint import (
    check_architecture,
    checkpoint_path,
    load_checkpoint,
    remove_stale_temp_files,
    restore_rng_state,
    save_training_checkpoint,
    upgrade_checkpoint,
)
from util.errors import RunFailed, UserError, run_cli
from util.precision import add_call_time, describe_hardware
from util.run_lock import RunLock
from util.visualizer import TrainingVisualizer


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of ``every`` lies in (before, after]: frequencies work for any batch size."""
    return every > 0 and after // every > before // every


def budget_spent(opt: argparse.Namespace, run_started: float, total_iters: int) -> str:
    """Which of ``--time_limit`` / ``--max_iters`` is used up ('' if neither).

    Image counts are the same on every rank; clocks are not, so rank 0's clock decides for all.
    """
    if opt.max_iters > 0 and total_iters >= opt.max_iters:
        return f"--max_iters {opt.max_iters}"
    if opt.time_limit > 0:
        late = distributed.context().is_main and time.time() - run_started >= opt.time_limit * 60
        if distributed.any_rank(late):
            return f"--time_limit {opt.time_limit} min"
    return ""


def prepare_data(opt: argparse.Namespace, ctx: distributed.DistributedContext) -> None:
    """Resolve ``--dataroot`` on rank 0 first, so only one process generates the built-in dataset."""
    if ctx.is_main:
        resolve_dataroot(opt)
    opt.dataroot = distributed.broadcast_object(opt.dataroot)


# Options that shape the networks only training has (the discriminators): a resumed run keeps them.
TRAINING_SHAPE_OPTIONS = ("netD", "n_layers_D", "ndf")


def restore(model: BaseModel, checkpoint: dict[str, Any], ctx: distributed.DistributedContext, opt: argparse.Namespace) -> None:
    """Load shared state, then this rank's pools and random states (fresh ones for new ranks)."""
    model.load_training_state(checkpoint["state"])
    ranks = checkpoint["ranks"]
    if ctx.rank < len(ranks):
        model.load_rank_state(ranks[ctx.rank]["state"])
        restore_rng_state(ranks[ctx.rank]["rng"])
    if ctx.is_main and len(ranks) != ctx.world_size:
        print(
            f"note: the checkpoint was written by {len(ranks)} process(es) and this run has {ctx.world_size}: "
            f"the data order and the epoch position carry over, but each step now takes "
            f"{opt.batch_size * ctx.world_size} images, and "
            + (
                f"processes {len(ranks)}..{ctx.world_size - 1} start with empty image pools and fresh random states"
                if ctx.world_size > len(ranks)
                else f"the image pools and random states of processes {ctx.world_size}..{len(ranks) - 1} are dropped"
            )
        )


def train(opt: argparse.Namespace) -> Path:
    """Run (or resume) training; returns the run folder."""
    ctx, device = distributed.init_distributed(opt.gpu_ids)
    try:
        return run_training(opt, ctx, device)
    finally:
        distributed.shutdown()


def run_training(opt: argparse.Namespace, ctx: distributed.DistributedContext, device: torch.device) -> Path:
    opt.world_size = ctx.world_size
    distributed.check_ranks_agree(opt)
    prepare_data(opt, ctx)
    run_dir = Path(opt.checkpoints_dir) / opt.name
    # One run per folder: rank 0 takes the lock before the folder is read or written; every rank stops if it cannot.
    lock = RunLock(run_dir)
    refused = None
    if ctx.is_main:
        try:
            lock.acquire()
        except UserError as err:
            refused = str(err)
    refused = distributed.broadcast_object(refused)
    if refused:
        raise UserError(refused)
    try:
        return train_in(opt, ctx, device, run_dir)
    finally:
        lock.release()


def train_in(opt: argparse.Namespace, ctx: distributed.DistributedContext, device: torch.device, run_dir: Path) -> Path:
    """Start or resume the run in its (locked) folder and train."""
    progress = {"epoch": opt.epoch_count, "position": 0, "total_iters": 0}
    checkpoint = None
    if opt.continue_train:
        path = checkpoint_path(run_dir, opt.epoch)
        checkpoint = upgrade_checkpoint(load_checkpoint(path), opt.batch_size)
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
    if ctx.rank > 0:
        # Same initial weights on every rank (DDP checks), then each rank draws its own numbers.
        seed_everything(opt.seed + 7919 * ctx.rank)
    if checkpoint is not None:
        path = checkpoint_path(run_dir, opt.epoch)
        check_architecture(checkpoint["architecture"], model.architecture(), path)
        saved = checkpoint["options"]
        check_architecture({key: saved[key] for key in TRAINING_SHAPE_OPTIONS if key in saved},
                           {key: getattr(opt, key) for key in TRAINING_SHAPE_OPTIONS if hasattr(opt, key)}, path)
        restore(model, checkpoint, ctx, opt)
        if ctx.is_main:
            print(
                f"resuming {opt.name} at epoch {progress['epoch']}, position {progress['position']} "
                f"({progress['total_iters']} images seen), lr {model.current_lr():.7f}"
            )
    visualizer = None
    if ctx.is_main:
        stale = remove_stale_temp_files(run_dir)
        if stale:
            print(f"removed {len(stale)} temp file(s) left by interrupted writes in {run_dir}")
        save_options(opt, run_dir, "train")
        print(format_options(opt) if opt.verbose else f"options saved to {run_dir / 'train_opt.txt'}")
        if ctx.enabled:
            print(f"data-parallel training: {ctx.world_size} processes ({ctx.backend}), {opt.batch_size} images each per step")
        visualizer = TrainingVisualizer(opt, run_dir, progress["total_iters"] if checkpoint is not None else None)

    try:
        loader = EpochLoader(dataset, opt, rank=ctx.rank, world_size=ctx.world_size)
        last_epoch = opt.n_epochs + opt.n_epochs_decay
        run_started = time.time()
        total_iters = progress["total_iters"]
        seconds_before = progress.get("train_seconds", 0.0)  # training time of earlier calls (wall clock)
        images_before = progress["total_iters"]
        machine = describe_hardware(device)
        images_per_step = opt.batch_size * ctx.world_size

        last_good = f"{checkpoint_path(run_dir, opt.epoch)} ({progress['total_iters']} images)" if checkpoint else "none yet"

        def save(name: str, epoch: int, position: int) -> None:
            nonlocal last_good
            seconds = time.time() - run_started
            progress_now = {"epoch": epoch, "position": position, "total_iters": total_iters,
                            "train_seconds": round(seconds_before + seconds, 1),
                            "machines": add_call_time(progress.get("machines", {}), machine, seconds,
                                                      total_iters - images_before, seconds_before, images_before)}
            save_training_checkpoint(run_dir / name, model, opt, progress_now)
            last_good = f"{run_dir / name} ({total_iters} images)"

        for epoch in range(progress["epoch"], last_epoch + 1):
            start = progress["position"] if epoch == progress["epoch"] else 0
            steps = loader.steps(start)
            model.on_epoch_start(epoch)
            model.set_mode(True)
            bar = tqdm(
                total=len(dataset),
                initial=min(len(dataset), start),
                unit="img",
                desc=f"epoch {epoch}/{last_epoch}",
                disable=opt.no_progress or not ctx.is_main,
                dynamic_ncols=True,
            )
            started, images_this_epoch, position = time.time(), 0, start
            for step, batch in enumerate(loader.epoch(epoch, start), start=1):
                try:
                    losses = model.train_step(batch)
                except NonFiniteLoss as err:
                    bar.close()
                    raise RunFailed(
                        f"training stopped: {err} at epoch {epoch}, step {step} (after {total_iters} images). Nothing was "
                        f"saved after the last good checkpoint: {last_good}. Lower --lr, check the data, use --precision "
                        f"fp32/bf16 instead of fp16, or pass --nonfinite skip; then resume with --continue_train"
                    ) from None
                before, total_iters = total_iters, total_iters + images_per_step
                position = min(len(dataset), position + images_per_step)
                images_this_epoch += images_per_step
                bar.update(images_per_step)
                if crossed(before, total_iters, opt.print_freq):
                    losses = distributed.mean_over_ranks(losses)
                    if visualizer is not None:
                        line = visualizer.log_losses(
                            epoch=epoch,
                            epoch_progress=position / len(dataset),
                            total_iters=total_iters,
                            losses=losses,
                            lr=model.current_lr(),
                            seconds_per_image=(time.time() - started) / images_this_epoch,
                        )
                        bar.write(line) if opt.no_progress else bar.set_postfix_str(line.split(") ", 1)[-1][:80])
                if visualizer is not None and crossed(before, total_iters, opt.display_freq):
                    visualizer.display(model.current_visuals(), epoch, total_iters)
                out_of_budget = budget_spent(opt, run_started, total_iters)
                if (crossed(before, total_iters, opt.save_latest_freq) or out_of_budget) and step < steps:
                    save("latest.pt", epoch, position)
                if out_of_budget and step < steps:
                    bar.close()
                    if ctx.is_main:
                        print(
                            f"stopping at {out_of_budget} (epoch {epoch}, position {position}, {total_iters} images); "
                            f"resume with --continue_train"
                        )
                    return run_dir
            bar.close()
            model.update_learning_rate()
            diagnostics = model.epoch_diagnostics()
            if model.skipped_steps:
                diagnostics.append(f"{model.skipped_steps} optimiser step(s) skipped so far for non-finite losses "
                                   f"(--nonfinite skip)")
            if ctx.is_main:
                for message in diagnostics:
                    warnings.warn(f"epoch {epoch}: {message}", stacklevel=1)
            if epoch % opt.save_epoch_freq == 0 or epoch == last_epoch:
                # The epoch snapshot first: a kill between the two writes then loses nothing.
                save(f"epoch_{epoch}.pt", epoch + 1, 0)
            save("latest.pt", epoch + 1, 0)
            if ctx.is_main:
                visualizer.save_loss_curve()
                print(
                    f"end of epoch {epoch}/{last_epoch}: {time.time() - started:.1f}s, "
                    f"{total_iters} images seen, lr now {model.current_lr():.7f}"
                )
            out_of_budget = budget_spent(opt, run_started, total_iters)
            if out_of_budget and epoch < last_epoch:
                if ctx.is_main:
                    print(f"stopping at {out_of_budget} after epoch {epoch}; resume with --continue_train")
                return run_dir
        if ctx.is_main:
            if progress["epoch"] > last_epoch:
                print(f"{opt.name} already finished its {last_epoch} epochs; raise --n_epochs/--n_epochs_decay to train more")
            print(f"checkpoints: {run_dir}; training page: {run_dir / 'web' / 'index.html'}")
        return run_dir

    finally:
        if visualizer is not None:
            visualizer.close()  # flushes TensorBoard / W&B

def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(
        lambda: train(parse_train_options(argv)), interrupted_hint="resume with --continue_train (the last checkpoint is intact)"
    )


if __name__ == "__main__":
    sys.exit(main())
