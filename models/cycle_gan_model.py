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
import re
from collections.abc import Callable
from typing import Any

import torch

from models import networks
from models.base_model import BaseModel, Visual
from models.inference import Translator
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

    def generator_input(self, side: str, image: torch.Tensor, real: bool) -> torch.Tensor:
        """What the generator of domain ``side`` is fed for ``image`` (a ``real`` one, or a translation
        in the cycle): the image itself (GuideGAN joins its attention map here)."""
        return image

    def judge(self, name: str, image: torch.Tensor) -> torch.Tensor:
        """Discriminator ``name``'s realness map for ``image``."""
        return self.networks[name](image)

    def inference_module(self, direction: str = "AtoB", target_domain: str | None = None) -> torch.nn.Module:
        return Translator(self.networks["G_A" if direction == "AtoB" else "G_B"].network)

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
        self.real_A, self.real_B = self.domain_pair(batch)

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


# ------------------------------------------------------------------ the CycleGAN repository's weights
_RELEASED_BLOCK = re.compile(r"model\.(\d+)\.conv_block\.(\d+)\.(.+)$")
UNET_NESTING_OFFSET = 1
_RELEASED_LAYER = re.compile(r"model\.(\d+)\.(.+)$")


def convert_released_generator(released: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Map a generator saved by the CycleGAN/pix2pix repository (``latest_net_G_A.pth``,
    ``latest_net_G.pth``, the pretrained ``horse2zebra.pth``) onto this code base's; returns the
    converted state_dict and the architecture options it implies.

    ResNet generators there are one ``Sequential`` named ``model``: ``model.1`` the 7x7 input
    convolution, ``model.4``/``model.7`` the down-samplings, ``model.{10..9+n}.conv_block.{1,5}``
    the residual blocks (``.6`` with dropout), then the up-samplings and the output convolution;
    here they are ``encoder.{0..9+n}`` (blocks' ``conv_block`` -> ``body``) and ``decoder.{0..}``.
    U-Net generators nest ``model.model. ...`` exactly as :class:`models.networks.UnetGenerator`
    does, so their keys carry over. Old checkpoints' instance-norm running statistics are dropped
    (instance norm keeps none); a ``module.`` prefix (DataParallel) is stripped. A ``KeyError``
    names any key that fits neither layout.
    """
    released = {k.removeprefix("module."): v for k, v in released.items()}
    released = {k: v for k, v in released.items() if not (k.endswith(("running_mean", "running_var", "num_batches_tracked"))
                                                          and _is_instance_norm_key(k, released))}
    batch_norm = any(k.endswith("running_mean") for k in released)
    if "model.model.0.weight" in released:  # U-Net
        first = released["model.model.0.weight"]
        # Each level nests one more "model.N.model"; the outermost up-convolution is model.model.3.
        size = 2 ** (max(k.count("model.") for k in released) - UNET_NESTING_OFFSET)
        architecture = {"netG": f"unet_{size}", "ngf": int(first.shape[0]), "input_nc": int(first.shape[1]),
                        "output_nc": int(released["model.model.3.weight"].shape[1]),
                        "norm": "batch" if batch_norm else "instance", "no_dropout": False}
        return dict(released), architecture
    blocks = sorted({int(m.group(1)) for k in released if (m := _RELEASED_BLOCK.match(k))})
    if not blocks or "model.1.weight" not in released:
        raise KeyError(f"neither a ResNet nor a U-Net generator of the CycleGAN repository (keys: {sorted(released)[:6]} ...)")
    n_blocks, end = len(blocks), blocks[-1] + 1
    dropout = any(_RELEASED_BLOCK.match(k).group(2) == "6" for k in released if _RELEASED_BLOCK.match(k))
    converted = {}
    for key, value in released.items():
        block, layer = _RELEASED_BLOCK.match(key), _RELEASED_LAYER.match(key)
        if block:
            converted[f"encoder.{block.group(1)}.body.{block.group(2)}.{block.group(3)}"] = value
        elif layer and int(layer.group(1)) < end:
            converted[f"encoder.{layer.group(1)}.{layer.group(2)}"] = value
        elif layer:
            converted[f"decoder.{int(layer.group(1)) - end}.{layer.group(2)}"] = value
        else:
            raise KeyError(f"unexpected key {key!r} in a CycleGAN-repository generator")
    output_conv = max(int(m.group(1)) for k in released if (m := _RELEASED_LAYER.match(k)) and k.endswith("weight"))
    architecture = {"netG": f"resnet_{n_blocks}blocks", "ngf": int(released["model.1.weight"].shape[0]),
                    "input_nc": int(released["model.1.weight"].shape[1]),
                    "output_nc": int(released[f"model.{output_conv}.weight"].shape[0]),
                    "norm": "batch" if batch_norm else "instance", "no_dropout": not dropout}
    return converted, architecture


def _is_instance_norm_key(key: str, state: dict[str, torch.Tensor]) -> bool:
    """A running statistic of a norm layer without affine parameters: an old instance norm's."""
    prefix = key.rsplit(".", 1)[0]
    return f"{prefix}.weight" not in state
