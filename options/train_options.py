"""Options of ``train.py``: schedule, optimiser, losses, display and saving."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from models import networks
from options.base_options import parse_options


def add_train_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("display and logging")
    g.add_argument("--display_freq", type=int, default=400, help="refresh the training page and Visdom images every N images")
    g.add_argument("--display_ncols", type=int, default=4, help="images per row in Visdom")
    g.add_argument("--display_id", type=int, default=1, help="Visdom window id; 0 turns Visdom off")
    g.add_argument("--display_server", type=str, default="http://localhost", help="Visdom server (never started by the toolkit)")
    g.add_argument("--display_env", type=str, default="main", help="Visdom environment")
    g.add_argument("--display_port", type=int, default=8097, help="Visdom port")
    g.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard event files (losses, lr, pictures) to CHECKPOINTS_DIR/NAME/tensorboard")
    g.add_argument("--use_wandb", action="store_true", help="also log to Weights & Biases (pip install wandb)")
    g.add_argument("--wandb_project_name", type=str, default="attention-gan-toolkit", help="the W&B project")
    g.add_argument("--wandb_mode", type=str, default="online", choices=("online", "offline"),
                   help="offline: write the W&B run under the run folder, to upload later with wandb sync")
    g.add_argument("--print_freq", type=int, default=100, help="log losses every N images")
    g.add_argument("--no_html", action="store_true", help="do not write the training HTML page")
    g.add_argument("--no_progress", action="store_true", help="no progress bars (e.g. in log files)")

    g = parser.add_argument_group("checkpoints")
    g.add_argument(
        "--save_latest_freq", type=int, default=5000, help="also save the latest checkpoint every N images (mid-epoch)"
    )
    g.add_argument("--save_epoch_freq", type=int, default=5, help="keep a checkpoint every N epochs")
    g.add_argument("--continue_train", action="store_true", help="resume exactly from the checkpoint chosen by --epoch")
    g.add_argument(
        "--epoch_count", type=int, default=1, help="number of the first epoch (ignored on --continue_train: the checkpoint knows)"
    )
    g.add_argument(
        "--time_limit", type=float, default=0, help="stop after this many minutes, saving a resumable checkpoint (0: no limit)"
    )
    g.add_argument(
        "--max_iters", type=int, default=0, help="stop after this many training images in total, resumably (0: no limit)"
    )
    g.add_argument("--phase", type=str, default="train", help="train, val, test, ...: which data folders to read")

    g = parser.add_argument_group("optimisation")
    g.add_argument("--n_epochs", type=int, default=100, help="epochs at the initial learning rate")
    g.add_argument("--n_epochs_decay", type=int, default=100, help="epochs over which the rate decays linearly to zero")
    g.add_argument("--beta1", type=float, default=0.5, help="Adam momentum term")
    g.add_argument("--lr", type=float, default=0.0002, help="initial Adam learning rate")
    g.add_argument("--gan_mode", type=str, default="lsgan", choices=networks.GAN_MODES, help="GAN objective")
    g.add_argument("--pool_size", type=int, default=50, help="image pool size for discriminator updates; 0 disables it")
    g.add_argument("--lr_policy", type=str, default="linear", choices=networks.LR_POLICIES, help="learning-rate policy")
    g.add_argument("--lr_decay_iters", type=int, default=50, help="step policy: multiply by 0.1 every N epochs")
    g.add_argument(
        "--nonfinite",
        type=str,
        default="stop",
        choices=("stop", "skip"),
        help="what a NaN/infinite loss does: stop (exit 3, checkpoints stay finite) or skip that optimiser step",
    )
    g.add_argument(
        "--max_skipped_steps", type=int, default=10, help="--nonfinite skip: stop anyway after this many skipped steps in a row"
    )


def parse_train_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``train.py``'s command line."""
    return parse_options(True, add_train_options, argv)
