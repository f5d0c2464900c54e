"""The experiment loggers PyTorch users read, beside the toolkit's own page and Visdom:
TensorBoard (``--tensorboard``) and Weights & Biases (``--use_wandb``).

Each is an optional dependency: asking for one that is not installed is an error naming the
package to install, before training starts. ``train.py`` builds them on rank 0 only (the training
visualizer exists there only). Both receive the losses and the learning rate every
``--print_freq`` images and the current pictures, attention maps included, every
``--display_freq`` images, at the global step ``total_iters`` (images seen).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from util.errors import UserError


class ExperimentLogger(Protocol):
    def log_scalars(self, step: int, values: dict[str, float]) -> None: ...

    def log_images(self, step: int, images: dict[str, np.ndarray]) -> None: ...

    def close(self) -> None: ...


def _missing(option: str, package: str) -> UserError:
    return UserError(f"{option} needs the {package} package, which is not installed: pip install {package} "
                     f"(or drop {option})")


class TensorBoardLogger:
    """Event files in ``CHECKPOINTS_DIR/NAME/tensorboard`` (``tensorboard --logdir checkpoints``)."""

    def __init__(self, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise _missing("--tensorboard", "tensorboard") from None
        self.log_dir = Path(run_dir) / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name if name == "lr" else f"loss/{name}", value, step)
        self.writer.flush()

    def log_images(self, step: int, images: dict[str, np.ndarray]) -> None:
        for name, image in images.items():
            self.writer.add_image(f"visuals/{name}", image, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """A W&B run named like the toolkit's run, in ``--wandb_project_name``; ``--wandb_mode offline``
    writes it under ``CHECKPOINTS_DIR/NAME/wandb`` to be synced later (``wandb sync``)."""

    def __init__(self, opt: argparse.Namespace, run_dir: Path) -> None:
        try:
            import wandb
        except ImportError:
            raise _missing("--use_wandb", "wandb") from None
        self.wandb = wandb
        config = {k: v for k, v in vars(opt).items() if isinstance(v, (int, float, str, bool, list, type(None)))}
        self.run = wandb.init(project=opt.wandb_project_name, name=opt.name, config=config, dir=str(run_dir),
                              mode=opt.wandb_mode, resume="allow", id=_run_id(run_dir))

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        self.run.log(dict(values), step=step)

    def log_images(self, step: int, images: dict[str, np.ndarray]) -> None:
        self.run.log({f"visuals/{name}": self.wandb.Image(image) for name, image in images.items()}, step=step)

    def close(self) -> None:
        self.run.finish()


def _run_id(run_dir: Path) -> str:
    """The W&B run id kept in the run folder, so ``--continue_train`` continues the same W&B run."""
    path = Path(run_dir) / "wandb_run_id.txt"
    if path.is_file():
        return path.read_text().strip()
    import uuid

    run_id = uuid.uuid4().hex[:12]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run_id + "\n")
    return run_id


def experiment_loggers(opt: argparse.Namespace, run_dir: Path) -> list[Any]:
    """The loggers the options ask for (none by default)."""
    loggers: list[Any] = []
    if getattr(opt, "tensorboard", False):
        loggers.append(TensorBoardLogger(run_dir))
    if getattr(opt, "use_wandb", False):
        loggers.append(WandbLogger(opt, run_dir))
    return loggers
