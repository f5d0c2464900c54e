"""The training contract every model implements, and the state it hands to checkpoints.

A model declares what it has in data, not in attribute-name conventions:
``self.networks`` (name -> module), ``self.optimizers``, ``self.pools``; ``optimize_parameters``
returns its losses as a dict; ``current_visuals`` returns :class:`Visual` records that
say which input each picture comes from and what it is, so the HTML pages, Visdom and
the evaluation scripts need no per-model code.

How the networks run is the base's business, not the model's: ``add_network`` wraps each
one in a :class:`models.runtime.NetworkRunner` (``--precision``, ``--channels_last``,
``--compile``, DistributedDataParallel under ``torchrun``), :meth:`BaseModel.train_step` runs
``optimize_parameters`` under autocast, and a model updates its weights only through
:meth:`BaseModel.minimize` (zero the gradients, backward, fp16 gradient scaling, step).
"""

from __future__ import annotations

import argparse
from typing import Any, ClassVar

import torch
from torch import nn

from models import networks
from models.runtime import NetworkRunner, prepare_compile
from util import distributed
from util.command_line import given_options
from util.errors import RunFailed, UserError
from util.image_pool import ImagePool
from util.precision import Precision
from util.visuals import VISUAL_KINDS, Visual  # noqa: F401  (re-exported for models)


class NonFiniteLoss(RunFailed):
    """A loss became NaN or infinite; raised before it could reach the weights."""

    def __init__(self, optimizer: str, terms: list[str], in_a_row: int) -> None:
        self.optimizer, self.terms, self.in_a_row = optimizer, terms, in_a_row
        super().__init__(f"non-finite loss {', '.join(terms)} (optimiser {optimizer})")


class BaseModel:
    """Base of all models: holds networks, optimisers, schedulers and image pools.

    Subclasses set ``architecture_options`` (options that change a network's shape, checked
    against a checkpoint before loading) and implement :meth:`set_input`, :meth:`forward`,
    :meth:`optimize_parameters` and :meth:`current_visuals`.
    """

    name: ClassVar[str] = ""
    architecture_options: ClassVar[tuple[str, ...]] = ()

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        """Add model-specific options and change defaults; called before the final parse."""
        return parser

    @classmethod
    def validate_options(cls, opt: argparse.Namespace) -> list[str]:
        """Problems with option values that only this model knows about, each naming the option,
        the value and what is allowed (checked right after parsing; see options/validation.py).

        The base checks the image size against the generator (``--netG``) and, when training,
        the discriminator (``--netD``); models add their own rules and call this one. At test
        time a ``--netG`` not given on the command line comes from the checkpoint, so test.py
        checks the size again once it has taken the run's options.
        """
        problems = []
        side = opt.crop_size if "crop" in opt.preprocess or not opt.isTrain else None
        netG = getattr(opt, "netG", None)
        if netG and side is not None and (opt.isTrain or "netG" in given_options(opt)):
            multiple = networks.generator_size_multiple(netG)
            if side % multiple:
                better = max(multiple, round(side / multiple) * multiple)
                problems.append(
                    f"--crop_size {side}: the {netG} generator needs image sides that are multiples of {multiple} "
                    f"(e.g. --crop_size {better})"
                )
        if opt.isTrain and getattr(opt, "netD", None) and side is not None:
            smallest = cls.discriminator_min_size(opt)
            if side < smallest:
                problems.append(f"--crop_size {side}: the discriminator needs images of at least {smallest} px")
        return problems

    @classmethod
    def discriminator_min_size(cls, opt: argparse.Namespace) -> int:
        """The smallest image side this model's discriminators accept (``--netD`` by default)."""
        return networks.discriminator_min_size(opt.netD, opt.n_layers_D)

    def __init__(self, opt: argparse.Namespace, device: torch.device) -> None:
        self.opt = opt
        self.device = device
        self.is_train: bool = opt.isTrain
        self.networks: dict[str, NetworkRunner] = {}
        self.train_only: set[str] = set()
        self.frozen: set[str] = set()  # networks never optimised (trainable=False)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.schedulers: dict[str, Any] = {}
        self.pools: dict[str, ImagePool] = {}
        self.epoch = opt.epoch_count if self.is_train else 0
        self.precision = Precision(getattr(opt, "precision", "fp32"), device)
        if getattr(opt, "compile", False):
            self.note(prepare_compile(torch.device(device)))
        if self.precision.asked == "auto":
            self.note(f"--precision auto: {self.precision.name} ({self.precision.why})")
        if self.precision.name == "fp16" and torch.device(device).type == "cpu":
            self.note("note: --precision fp16 on a CPU has no fast kernels and runs about 20x slower than fp32; "
                      "use bf16 (on CPUs with AVX512-BF16 or AMX) or fp32")
        self.skipped_steps = 0  # optimiser steps skipped for a non-finite loss (--nonfinite skip)
        self.skipped_in_a_row: dict[str, int] = {}  # per optimiser

    # ------------------------------------------------------------------ construction helpers
    def build_generator(self, input_nc: int, output_nc: int) -> nn.Module:
        """The ``--netG`` generator (ResNet or U-Net); models with other generators override it."""
        opt = self.opt
        return networks.define_generator(opt.netG, input_nc, output_nc, opt.ngf, opt.norm, not opt.no_dropout)

    def build_discriminator(self, input_nc: int) -> nn.Module:
        """The ``--netD`` discriminator (PatchGAN or pixel); models with other discriminators override it."""
        opt = self.opt
        return networks.define_discriminator(opt.netD, input_nc, opt.ndf, opt.n_layers_D, opt.norm)

    def add_network(
        self, name: str, net: nn.Module, *, train_only: bool = False, init: bool = True, trainable: bool = True
    ) -> NetworkRunner:
        """Register ``net`` under ``name``, initialise its weights, move it to the device and wrap
        it in a :class:`NetworkRunner`; returns the runner, which is what model code calls.

        ``train_only`` networks (discriminators, say) are neither built at test time by
        well-behaved models nor required in a checkpoint loaded for testing. ``trainable=False``
        marks a network that is never optimised (a frozen classifier): it is not data-parallel.
        """
        if init:
            networks.init_weights(net, self.opt.init_type, self.opt.init_gain)
        net.to(self.device)
        runner = NetworkRunner(
            net, use_channels_last=getattr(self.opt, "channels_last", False), compile_network=getattr(self.opt, "compile", False)
        )
        if trainable and self.is_train and getattr(self.opt, "world_size", 1) > 1:
            runner.make_data_parallel(self.device)
        if not trainable:
            self.frozen.add(name)
        self.networks[name] = runner
        if train_only:
            self.train_only.add(name)
        return runner

    def add_optimizer(
        self, name: str, params: Any, lr: float | None = None, betas: tuple[float, float] | None = None
    ) -> torch.optim.Optimizer:
        """Register an Adam optimiser with ``--lr``/``--beta1`` unless given (and its fp16 gradient scaler)."""
        optimizer = torch.optim.Adam(
            params, lr=self.opt.lr if lr is None else lr, betas=(self.opt.beta1, 0.999) if betas is None else betas
        )
        self.optimizers[name] = optimizer
        self.scalers[name] = self.precision.make_scaler()
        return optimizer

    def trainable_parameters(self, discriminators: bool) -> list[nn.Parameter]:
        """The parameters of the discriminators (networks named ``D...``) or of every other network
        that is trained (generators, attention networks, ...), for the ``D`` and ``G`` optimisers."""
        return [
            p
            for name, net in self.networks.items()
            if name.startswith("D") == discriminators and name not in self.frozen
            for p in net.parameters()
        ]

    def add_pool(self, name: str) -> ImagePool:
        """Register an image pool of ``--pool_size`` seeded from ``--seed``."""
        # Each torchrun process draws its own pool choices (rank 0's are those of a single process).
        pool = ImagePool(self.opt.pool_size, seed=self.opt.seed + len(self.pools) + 1000 * distributed.context().rank)
        self.pools[name] = pool
        return pool

    def setup(self) -> None:
        """Create one learning-rate scheduler per optimiser (training only)."""
        opt = self.opt
        for name, optimizer in self.optimizers.items():
            self.schedulers[name] = networks.make_scheduler(
                optimizer,
                opt.lr_policy,
                epoch_count=opt.epoch_count,
                n_epochs=opt.n_epochs,
                n_epochs_decay=opt.n_epochs_decay,
                lr_decay_iters=opt.lr_decay_iters,
            )

    # ------------------------------------------------------------------ the training contract
    def set_input(self, batch: dict[str, Any]) -> None:
        """Unpack a batch from the data loader and move its tensors to the device."""
        raise NotImplementedError

    def domain_pair(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's A and B images on the device, for models that translate both ways; a clear
        error for one-folder data (``--dataset_mode single``)."""
        if "B" not in batch:
            raise UserError(f"--model {self.name} translates both ways and needs both domains (--dataset_mode "
                            f"unaligned, <phase>A/ and <phase>B/); to translate one folder use translate.py --name RUN")
        return batch["A"].to(self.device), batch["B"].to(self.device)

    def forward(self) -> None:
        """Compute the outputs shown in :meth:`current_visuals`."""
        raise NotImplementedError

    def optimize_parameters(self) -> dict[str, float]:
        """One training step; returns the losses by name."""
        raise NotImplementedError

    def current_visuals(self) -> dict[str, Visual]:
        """The pictures of the last :meth:`forward`, in display order."""
        raise NotImplementedError

    def test(self) -> None:
        """Forward without gradients (test time), under ``--precision``."""
        with torch.no_grad(), self.precision.autocast():
            self.forward()

    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        """One training step on ``batch`` under ``--precision``; returns the losses by name."""
        self.set_input(batch)
        with self.precision.autocast():
            return self.optimize_parameters()

    def minimize(self, name: str, losses: torch.Tensor | dict[str, torch.Tensor]) -> None:
        """Take one step of optimiser ``name`` on ``losses`` (a tensor, or named terms that are
        summed): zero its gradients, backpropagate (scaled for fp16), step, and update the
        gradient scaler.

        The one place where weights change during training, so models never handle scalers,
        autocast or the autocast weight cache themselves. A non-finite loss never reaches the
        weights: with ``--nonfinite stop`` (default) it raises :class:`NonFiniteLoss` naming the
        terms; with ``--nonfinite skip`` the step is skipped, up to ``--max_skipped_steps`` in a row.
        All ``torchrun`` processes take the same decision.
        """
        terms = losses if isinstance(losses, dict) else {"loss": losses}
        total = sum(value.float() for value in terms.values())
        optimizer, scaler = self.optimizers[name], self.scalers[name]
        optimizer.zero_grad(set_to_none=True)
        if distributed.any_rank(not bool(torch.isfinite(total))):
            bad = [key for key, value in terms.items() if not bool(torch.isfinite(value).all())]
            in_a_row = self.skipped_in_a_row[name] = self.skipped_in_a_row.get(name, 0) + 1
            if getattr(self.opt, "nonfinite", "stop") == "skip" and in_a_row <= self.opt.max_skipped_steps:
                self.skipped_steps += 1
                return
            raise NonFiniteLoss(name, bad or ["(on another process)"], in_a_row)
        self.skipped_in_a_row[name] = 0
        with self.precision.full_precision():
            scaler.scale(total).backward()
            scaler.step(optimizer)
            scaler.update()
        # The weights changed in place: low-precision copies cached by autocast are stale now.
        torch.clear_autocast_cache()

    def on_epoch_start(self, epoch: int) -> None:
        """Hook for epoch-dependent behaviour (loss curricula, training stages)."""
        self.epoch = epoch

    def note(self, message: str) -> None:
        """Tell the user something about the run (printed once, by rank 0 under torchrun)."""
        if distributed.context().is_main:
            print(message, flush=True)

    def epoch_diagnostics(self) -> list[str]:
        """Warnings about the epoch that just ended (e.g. collapsed attention); none by default."""
        return []

    # ------------------------------------------------------------------ modes and schedules
    def set_mode(self, train: bool) -> None:
        """Switch every network between train and eval mode."""
        for net in self.networks.values():
            net.train(train)

    def update_learning_rate(self, metric: float = 0.0) -> None:
        """Step every scheduler once (end of an epoch)."""
        for scheduler in self.schedulers.values():
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(metric)
            else:
                scheduler.step()

    def current_lr(self) -> float:
        """Learning rate of the first optimiser (all share one policy)."""
        first = next(iter(self.optimizers.values()), None)
        return 0.0 if first is None else float(first.param_groups[0]["lr"])

    # ------------------------------------------------------------------ state for checkpoints
    def architecture(self) -> dict[str, Any]:
        """The values of :attr:`architecture_options` for this run."""
        return {key: getattr(self.opt, key) for key in self.architecture_options}

    def training_state(self) -> dict[str, Any]:
        """What all processes share and training needs to continue exactly: weights, optimisers,
        gradient scalers, schedules and model-specific state (:meth:`extra_state`)."""
        return {
            "networks": {name: net.state_dict() for name, net in self.networks.items()},
            "optimizers": {name: o.state_dict() for name, o in self.optimizers.items()},
            "scalers": {name: s.state_dict() for name, s in self.scalers.items()},
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
            "extra": self.extra_state(),
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`training_state` saved."""
        self.load_networks(state["networks"], list(self.networks))
        for kind, objects in (("optimizers", self.optimizers), ("schedulers", self.schedulers)):
            for name, obj in objects.items():
                obj.load_state_dict(state[kind][name])
        for name, scaler in self.scalers.items():
            saved = state.get("scalers", {}).get(name)
            # Empty when saved by a run without fp16; --precision may change when resuming.
            if saved and scaler.is_enabled():
                scaler.load_state_dict(saved)
        self.load_extra_state(state.get("extra", {}))

    def rank_state(self) -> dict[str, Any]:
        """What each ``torchrun`` process holds for itself: image pools and :meth:`extra_rank_state`."""
        return {"pools": {name: pool.state_dict() for name, pool in self.pools.items()}, "extra": self.extra_rank_state()}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`rank_state` saved (for this process)."""
        for name, pool in self.pools.items():
            pool.load_state_dict(state["pools"][name], self.device)
        self.load_extra_rank_state(state.get("extra", {}))

    def inference_module(self, direction: str = "AtoB", target_domain: str | None = None) -> nn.Module:
        """A plain module translating one direction (``AtoB``: the model's ``A`` side, i.e. ``G_A``),
        returning a tuple of outputs named by its ``output_names`` (see models/inference.py); built
        from this model's networks, for ``translate.py`` and the exporters."""
        raise UserError(f"--model {self.name} has no one-direction translator")

    def prepare_from_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Build what only the checkpoint can say how to build (before its networks are loaded at
        test time); nothing by default. SAAGAN rebuilds its frozen classifier here."""

    def load_networks(self, saved: dict[str, dict[str, torch.Tensor]], names: list[str]) -> None:
        """Load the named networks' weights; a missing network or a shape mismatch is an error."""
        for name in names:
            if name not in saved:
                raise KeyError(f"network {name!r} is not in the checkpoint (it has {sorted(saved)})")
            self.networks[name].load_state_dict(saved[name])

    def extra_state(self) -> dict[str, Any]:
        """Model-specific state to checkpoint beyond networks/optimisers/pools."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state`."""

    def extra_rank_state(self) -> dict[str, Any]:
        """Model-specific state that differs per process (e.g. a per-image bank of the process's shard)."""
        return {}

    def load_extra_rank_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_rank_state`."""

    @property
    def inference_networks(self) -> list[str]:
        """Networks needed at test time."""
        return [name for name in self.networks if name not in self.train_only]
