"""pix2pix (Isola et al., CVPR 2017): paired translation with a conditional GAN.

Objective (Eq. 4 of the paper): ``G* = arg min_G max_D L_cGAN(G, D) + lambda_L1 * L_L1(G)``
where D judges the pair ``[x, y]`` (input and real or generated output, concatenated on
channels). Defaults: U-Net-256 generator, 70x70 PatchGAN, vanilla GAN, batch norm, L1 100,
aligned data, no image pool.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from models import networks
from models.base_model import BaseModel, Visual
from models.cycle_gan_model import discriminator_loss
from models.inference import Translator
from models.registry import register_model
from util.errors import UserError


@register_model("pix2pix")
class Pix2PixModel(BaseModel):
    architecture_options = ("netG", "ngf", "norm", "no_dropout", "input_nc", "output_nc")

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(norm="batch", netG="unet_256", dataset_mode="aligned")
        if is_train:
            parser.set_defaults(pool_size=0, gan_mode="vanilla")
            parser.add_argument("--lambda_L1", type=float, default=100.0, help="weight of the L1 loss")
        return parser

    def generator_input(self, image: torch.Tensor) -> torch.Tensor:
        """What the generator is fed for the input ``image``: the image (GuideGAN joins its map here)."""
        return image

    def judge(self, pair: torch.Tensor) -> torch.Tensor:
        """The conditional discriminator's realness map for an ``[input, output]`` pair."""
        return self.networks["D"](pair)

    def inference_module(self, direction: str = "AtoB", target_domain: str | None = None) -> torch.nn.Module:
        if direction != "AtoB":
            raise UserError(f"--model {self.name} learned one direction, the one it was trained with; translate that one")
        return Translator(self.networks["G"].network)

    @property
    def loss_weights(self) -> tuple[float, float]:
        """``(GAN weight, L1 weight)`` of Eq. (4)."""
        return 1.0, self.opt.lambda_L1

    def __init__(self, opt: argparse.Namespace, device: torch.device) -> None:
        super().__init__(opt, device)
        self.add_network("G", self.build_generator(opt.input_nc, opt.output_nc))
        if self.is_train:
            self.add_network("D", self.build_discriminator(opt.input_nc + opt.output_nc), train_only=True)
            self.fake_pool = self.add_pool("fake_AB")
            self.gan_loss = networks.GANLoss(opt.gan_mode).to(device)
            self.add_optimizer("G", self.trainable_parameters(discriminators=False))
            self.add_optimizer("D", self.trainable_parameters(discriminators=True))

    def set_input(self, batch: dict[str, Any]) -> None:
        self.real_A = batch["A"].to(self.device)
        self.real_B = batch["B"].to(self.device)

    def forward(self) -> None:
        self.fake_B = self.networks["G"](self.generator_input(self.real_A))

    def optimize_parameters(self) -> dict[str, float]:
        self.forward()
        netD = self.networks["D"]
        real_pair = torch.cat([self.real_A, self.real_B], 1)
        fake_pair = torch.cat([self.real_A, self.fake_B], 1)

        networks.set_requires_grad(netD, True)
        loss_D = discriminator_loss(self.judge, self.gan_loss, real_pair, self.fake_pool.query(fake_pair), self.opt)
        self.minimize("D", {"D": loss_D})

        networks.set_requires_grad(netD, False)
        gan_weight, l1_weight = self.loss_weights
        loss_G_GAN = gan_weight * self.gan_loss(self.judge(fake_pair), True)
        loss_G_L1 = l1_weight * torch.nn.functional.l1_loss(self.fake_B, self.real_B)
        self.minimize("G", {"G_GAN": loss_G_GAN, "G_L1": loss_G_L1})
        return {name: float(value.detach()) for name, value in {"G_GAN": loss_G_GAN, "G_L1": loss_G_L1, "D": loss_D}.items()}

    def current_visuals(self) -> dict[str, Visual]:
        return {
            "real_A": Visual(self.real_A, "A", "real"),
            "fake_B": Visual(self.fake_B, "A", "fake"),
            "real_B": Visual(self.real_B, "B", "real"),
        }
