"""CycleGAN (Zhu et al., ICCV 2017): unpaired translation with cycle consistency.

``G_A: A -> B`` and ``G_B: B -> A``; ``D_A`` judges ``G_A(x)`` against real ``y`` and
``D_B`` judges ``G_B(y)`` against real ``x``. Generator objective (Eq. 3 of the paper,
plus the identity term of §5.2):

    L_G = GAN(D_A(G_A(x))) + GAN(D_B(G_B(y)))
          + lambda_A * |G_B(G_A(x)) - x|_1 + lambda_B * |G_A(G_B(y)) - y|_1
          + lambda_identity * (lambda_B * |G_A(y) - y|_1 + lambda_A * |G_B(x) - x|_1)

Discriminators see fakes from a 50-image pool; their loss is halved to slow them
relative to the generators. Defaults: ResNet-9, PatchGAN, LSGAN, cycle 10, identity 0.5.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import torch

from models import networks
from models.base_model import BaseModel, Visual
from models.registry import register_model


@register_model("cycle_gan")
class CycleGANModel(BaseModel):
    architecture_options = ("netG", "ngf", "norm", "no_dropout", "input_nc", "output_nc")

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(no_dropout=True, dataset_mode="unaligned")
        if is_train:
            add_cycle_loss_options(parser)
        return parser

    def build_generator(self, input_nc: int, output_nc: int) -> torch.nn.Module:
        opt = self.opt
        return networks.define_generator(opt.netG, input_nc, output_nc, opt.ngf, opt.norm, not opt.no_dropout)

    def build_discriminator(self, input_nc: int) -> torch.nn.Module:
        opt = self.opt
        return networks.define_discriminator(opt.netD, input_nc, opt.ndf, opt.n_layers_D, opt.norm)

    def generator_input(self, side: str, image: torch.Tensor, real: bool) -> torch.Tensor:
        """What the generator of domain ``side`` is fed for ``image`` (a ``real`` one, or a translation
        in the cycle): the image itself (GuideGAN joins its attention map here)."""
        return image

    def judge(self, name: str, image: torch.Tensor) -> torch.Tensor:
        """Discriminator ``name``'s realness map for ``image``."""
        return self.networks[name](image)

    def __init__(self, opt: argparse.Namespace, device: torch.device) -> None:
        super().__init__(opt, device)
        for name, (in_nc, out_nc) in {"G_A": (opt.input_nc, opt.output_nc), "G_B": (opt.output_nc, opt.input_nc)}.items():
            self.add_network(name, self.build_generator(in_nc, out_nc))
        if self.is_train:
            self.add_network("D_A", self.build_discriminator(opt.output_nc), train_only=True)
            self.add_network("D_B", self.build_discriminator(opt.input_nc), train_only=True)
            self.fake_A_pool, self.fake_B_pool = self.add_pool("fake_A"), self.add_pool("fake_B")
            self.gan_loss = networks.GANLoss(opt.gan_mode).to(device)
            self.l1 = torch.nn.L1Loss()
            self.add_optimizer("G", self.trainable_parameters(discriminators=False))
            self.add_optimizer("D", self.trainable_parameters(discriminators=True))

    def set_input(self, batch: dict[str, Any]) -> None:
        self.real_A = batch["A"].to(self.device)
        self.real_B = batch["B"].to(self.device)

    def forward(self) -> None:
        G_A, G_B, feed = self.networks["G_A"], self.networks["G_B"], self.generator_input
        self.fake_B = G_A(feed("A", self.real_A, True))
        self.rec_A = G_B(feed("B", self.fake_B, False))
        self.fake_A = G_B(feed("B", self.real_B, True))
        self.rec_B = G_A(feed("A", self.fake_A, False))

    def generator_losses(self) -> dict[str, torch.Tensor]:
        """The terms of L_G (see module docstring)."""
        opt = self.opt
        losses = {
            "G_A": self.gan_loss(self.judge("D_A", self.fake_B), True),
            "G_B": self.gan_loss(self.judge("D_B", self.fake_A), True),
            "cycle_A": self.l1(self.rec_A, self.real_A) * opt.lambda_A,
            "cycle_B": self.l1(self.rec_B, self.real_B) * opt.lambda_B,
        }
        if opt.lambda_identity > 0:
            feed = self.generator_input
            idt_A = self.networks["G_A"](feed("A", self.real_B, False))
            idt_B = self.networks["G_B"](feed("B", self.real_A, False))
            losses["idt_A"] = self.l1(idt_A, self.real_B) * opt.lambda_B * opt.lambda_identity
            losses["idt_B"] = self.l1(idt_B, self.real_A) * opt.lambda_A * opt.lambda_identity
        return losses

    def optimize_parameters(self) -> dict[str, float]:
        self.forward()
        discriminators = [self.networks["D_A"], self.networks["D_B"]]
        networks.set_requires_grad(discriminators, False)
        g_losses = self.generator_losses()
        self.minimize("G", g_losses)

        networks.set_requires_grad(discriminators, True)
        d_losses = {
            "D_A": discriminator_loss(
                lambda x: self.judge("D_A", x), self.gan_loss, self.real_B, self.fake_B_pool.query(self.fake_B), self.opt
            ),
            "D_B": discriminator_loss(
                lambda x: self.judge("D_B", x), self.gan_loss, self.real_A, self.fake_A_pool.query(self.fake_A), self.opt
            ),
        }
        self.minimize("D", d_losses)
        return {name: float(value.detach()) for name, value in {**g_losses, **d_losses}.items()}

    def current_visuals(self) -> dict[str, Visual]:
        return {
            "real_A": Visual(self.real_A, "A", "real"),
            "fake_B": Visual(self.fake_B, "A", "fake"),
            "rec_A": Visual(self.rec_A, "A", "rec"),
            "real_B": Visual(self.real_B, "B", "real"),
            "fake_A": Visual(self.fake_A, "B", "fake"),
            "rec_B": Visual(self.rec_B, "B", "rec"),
        }


def add_cycle_loss_options(parser: argparse.ArgumentParser) -> None:
    """Cycle and identity weights, shared by CycleGAN and the attention models built on it."""
    parser.add_argument("--lambda_A", type=float, default=10.0, help="weight of the cycle loss A -> B -> A")
    parser.add_argument("--lambda_B", type=float, default=10.0, help="weight of the cycle loss B -> A -> B")
    parser.add_argument(
        "--lambda_identity",
        type=float,
        default=0.5,
        help="identity loss weight, relative to lambda_A/B (0.5: identity weighs half the cycle); 0 disables it",
    )


def discriminator_loss(
    netD: Callable[[torch.Tensor], torch.Tensor],
    gan_loss: networks.GANLoss,
    real: torch.Tensor,
    fake: torch.Tensor,
    opt: argparse.Namespace,
) -> torch.Tensor:
    """``0.5 * (GAN(D(real), 1) + GAN(D(fake), 0))``, plus the gradient penalty for wgangp;
    ``netD`` is anything that returns the realness map of an image batch."""
    loss = 0.5 * (gan_loss(netD(real), True) + gan_loss(netD(fake.detach()), False))
    if opt.gan_mode == "wgangp":
        loss = loss + networks.gradient_penalty(netD, real, fake)
    return loss
