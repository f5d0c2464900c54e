"""GuideGAN: the discriminator's attention guides the generator (papers/guidegan.txt).

Two registered models, built on the CycleGAN and pix2pix models:

- ``guidegan`` (unpaired, Eq. 10-11): CycleGAN with attentive discriminators; ``G_A`` translates
  ``join(x, T(M_x))`` where ``M_x`` is the map ``D_A`` produced for ``x``'s previous translation.
- ``guidegan_paired`` (supervised, Eq. 6-9): pix2pix with an attentive conditional discriminator
  (it judges ``[x, y]`` pairs); ``G`` translates ``join(x, T(M_x))``.

Shared pieces (``models/guidance.py``): PHA / TAM discriminators (``--d_attention``), the
transfer function ``T`` (``--transfer bilinear|learned``, the learned one trained with the
generators), RHP / alpha joins (``--join``), and the per-image bank of Eq. (1), kept in the
checkpoint so ``--continue_train`` is exact; under ``torchrun`` every process stores every
process's maps, so the bank is global whichever process the sampler sends an image to.
At test time, and for a translation that is not a dataset image (the cycle's second pass, the
identity term), the map is all ones (Sec. 4: "an all-one attention map is used as the
placeholder").

Defaults (Appendix A): LSGAN, GAN weight 10, cycle (unpaired) or L1 (paired) weight 10, no
identity term; unpaired: ResNet-9 generator, PatchGAN, instance norm; paired: U-Net generator
(``--netG unet_256``; at 128 px, ``--netG unet_128`` as the paper's Cityscapes runs), the same
PatchGAN; Adam 2e-4, beta1 0.5, batch 1. Epochs follow the paper's tasks: 50 + 50 for
horse2zebra and day2night (the unpaired default here), 100 + 100 for apple2orange and Cityscapes
(the paired default).

Table 1 columns: PHA+Alpha ``--d_attention pha --join alpha``; PHA+RHP (default)
``--d_attention pha --join rhp``; TAM+Alpha ``--d_attention tam --join alpha``; TAM+RHP
``--d_attention tam --join rhp``.

The test-time map (``--test_map``). A ResNet generator with instance norm is exactly invariant to
a constant map: RHP scales its input by a constant and alpha adds a constant channel, and the
instance norm after the first convolution removes both. So for ``guidegan`` the all-ones test
map is neutral, and a flat map in training (a TAM whose mask stays uniform) guides nothing. The
paired U-Net is not invariant: its first layer has no norm and feeds the outermost skip, so it
trains on ``(1 + M) x`` with ``M`` about 0.4-0.5 and would be tested on ``2 x``. ``--test_map mean``,
the paired model's default, tests on the mean of the maps the run stored instead: on maps it
scored 14.85 dB / SSIM 0.077 against 14.03 / 0.062 with ones (docs/benchmark.md, "GuideGAN
findings"). The unpaired model keeps the paper's ones (neutral there).

Isolating the guidance: ``--join none`` is the no-guidance control (the same generator and
attentive discriminators, the map ignored); the paper's loss weights differ from its baselines'
(GAN 10 / L1 10 against pix2pix's 1 / 100; GAN 10 and no identity against CycleGAN's 1 and 0.5),
so a comparison of the guidance alone passes the baseline's weights to both (docs/benchmark.md).

Choices where the paper is silent: PHA reads the output of the 4th convolution block (after its
normalisation and LeakyReLU); the map stored for an image is the one ``D`` gave its translation
in the generator step (no extra forward pass); the bank keeps maps at ``--bank_size`` (32)
cells per side of the resized image.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from models import networks
from models.base_model import Visual
from models.cycle_gan_model import CycleGANModel
from models.guidance import (
    D_ATTENTIONS,
    JOINS,
    AttentionBank,
    AttentionTransfer,
    AttentiveDiscriminator,
    DiscriminatorOutput,
    constant_map,
    join,
    joined_channels,
    mean_map_level,
)
from models.inference import GuidedTranslator
from models.pix2pix_model import Pix2PixModel
from models.registry import register_model
from util import distributed
from util.command_line import given_options
from util.errors import UserError


def add_guidance_options(parser: argparse.ArgumentParser, is_train: bool) -> None:
    g = parser.add_argument_group("GuideGAN")
    g.add_argument("--d_attention", type=str, default="pha", choices=D_ATTENTIONS,
                   help="where the discriminator looks: pha (post hoc, 4th conv block) or tam (trainable module)")
    g.add_argument("--join", type=str, default="rhp", choices=JOINS,
                   help="how the generator's input takes the map: rhp (M+1)*x, or alpha [x, M] (4 channels)")
    g.add_argument("--transfer", type=str, default="bilinear", choices=("bilinear", "learned"),
                   help="g(M): bilinear resizing, or a small learned up-sampler trained with the generators")
    g.add_argument("--test_map", type=str, default="ones", choices=("ones", "mean"),
                   help="the constant map at test time: all ones (Sec. 4), or the mean of the maps the run stored in "
                   "training (the level the generator was trained on; the paired model's default, measured better)")
    if is_train:
        g.add_argument("--lambda_gan", type=float, default=10.0, help="weight of the adversarial terms (Appendix A)")
        g.add_argument("--bank_size", type=int, default=32, help="cells per side of each stored map")
        g.add_argument("--attention_prior", type=str, default="none", choices=("none", "masks"),
                       help="not for GuideGAN: it has no blending mask for masks to supervise (refused)")


class Guided:
    """What both GuideGAN models share: the attentive discriminators, ``T``, the joins and the banks."""

    opt: argparse.Namespace

    @classmethod
    def validate_options(cls, opt: argparse.Namespace) -> list[str]:
        problems = super().validate_options(opt)
        if getattr(opt, "attention_prior", "none") == "masks":
            problems.append(f"--attention_prior masks: --model {cls.name} has no blending mask (its maps are the "
                            f"discriminator's guidance), so masks cannot supervise it; use aggan, attentiongan, uait "
                            f"or saagan")
        if opt.isTrain and opt.d_attention == "tam" and opt.netD == "n_layers" and opt.n_layers_D != 3:
            problems.append(f"--n_layers_D {opt.n_layers_D}: the TAM discriminator (--d_attention tam) has the "
                            f"paper's fixed shape; use --netD basic, or --d_attention pha for a shallower PatchGAN")
        return problems

    @classmethod
    def discriminator_min_size(cls, opt: argparse.Namespace) -> int:
        """The PHA and TAM discriminators are PatchGAN-shaped: no ``--netD pixel``."""
        return networks.patchgan_min_size(opt.netD, opt.n_layers_D)

    def add_transfer(self) -> None:
        learned = self.opt.transfer == "learned"
        self.add_network("T", AttentionTransfer(learned=learned), trainable=learned)
        self.banks: dict[str, AttentionBank] = {}
        self.test_levels: dict[str, float] = {}  # --test_map mean (see prepare_from_checkpoint)
        self.feeding: dict[str, torch.Tensor] = {}  # the maps fed to the generators in this step
        self.given: dict[str, torch.Tensor] = {}  # the maps D gave this step's translations

    def attentive_discriminator(self, input_nc: int) -> AttentiveDiscriminator:
        depth = networks.patchgan_depth(self.opt.netD, self.opt.n_layers_D)
        return AttentiveDiscriminator(input_nc, self.opt.ndf, self.opt.norm, self.opt.d_attention, depth)

    def build_generator(self, input_nc: int, output_nc: int) -> torch.nn.Module:
        """The base model's generator, taking the joined input; the transfer function ``T`` is added
        first (before ``G_A``/``G``), so the generators' optimiser holds it too."""
        if "T" not in self.networks:
            self.add_transfer()
        return super().build_generator(joined_channels(input_nc, self.opt.join), output_nc)

    def build_discriminator(self, input_nc: int) -> torch.nn.Module:
        return self.attentive_discriminator(input_nc)

    def guided(self, side: str, image: torch.Tensor, stored: bool) -> torch.Tensor:
        """``join(image, T(M))``: ``M`` from the bank for a dataset image (``stored``) in training; at
        test time the ``--test_map`` level; ones for every other translation (cycle, identity)."""
        size = image.shape[-2:]
        if stored and self.is_train and self.batch_keys.get(side) is not None:
            indices, geometry = self.batch_keys[side]
            bank = self.banks.setdefault(side, AttentionBank(self.opt.bank_size))
            attention = bank.read(indices, geometry.to(image.device), size).to(image.dtype)
        elif stored and not self.is_train:
            attention = constant_map(image, self.test_levels.get(side, 1.0))
        else:
            attention = torch.ones_like(image[:, :1])
        attention = self.networks["T"](attention, size)
        if stored:
            self.feeding[side] = attention
        return join(image, attention, self.opt.join)

    def prepare_from_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """``--test_map mean``: the mean of the maps the run stored, per side, from the checkpoint's banks."""
        if getattr(self.opt, "test_map", "ones") != "mean":
            return
        banks = checkpoint["state"].get("extra", {}).get("banks") or {}
        if not banks:  # written before the banks were global: one per process
            for rank in checkpoint.get("ranks", []):
                banks = {**rank["state"].get("extra", {}).get("banks", {}), **banks}
        self.test_levels = mean_map_level(banks)
        if not self.test_levels:
            if "test_map" not in given_options(self.opt):  # the paired model's default: fall back to ones, say so
                self.note("--test_map mean (the default): the checkpoint holds no stored maps, so all-ones maps are used")
                return
            raise UserError("--test_map mean: the checkpoint holds no stored maps (it was converted or never trained); "
                            "use --test_map ones")
        self.note("--test_map mean: constant maps at " + ", ".join(f"{side} {v:.3f}" for side, v in self.test_levels.items()))

    def keep_keys(self, batch: dict[str, Any], sides: str) -> None:
        self.batch_keys = {side: (batch[f"{side}_index"], batch[f"{side}_geometry"]) if f"{side}_index" in batch else None
                           for side in sides}

    def remember(self, side: str, attention: torch.Tensor) -> None:
        """Eq. (1): keep ``D``'s map of this translation for the image's next visit, in every
        ``torchrun`` process (the next visit may come from another one)."""
        keys = self.batch_keys.get(side)
        bank = self.banks.setdefault(side, AttentionBank(self.opt.bank_size))
        pasted = bank.paste(keys[0], keys[1], attention) if keys is not None else None
        for written in distributed.all_gather_objects(pasted):
            if written is not None:
                bank.store(*written)

    def extra_state(self) -> dict[str, Any]:
        """The banks are the same in every process: saved once, with the weights."""
        return {"banks": {side: bank.state_dict() for side, bank in self.banks.items()}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self._load_banks(state.get("banks", {}))

    def load_extra_rank_state(self, state: dict[str, Any]) -> None:
        """Checkpoints written before the banks were global kept one per process."""
        self._load_banks(state.get("banks", {}))

    def _load_banks(self, states: dict[str, Any]) -> None:
        for side, bank_state in states.items():
            bank = AttentionBank(bank_state["bank_size"])
            bank.load_state_dict(bank_state)
            self.banks[side] = bank


@register_model("guidegan")
class GuideGANModel(Guided, CycleGANModel):
    architecture_options = CycleGANModel.architecture_options + ("d_attention", "join", "transfer")

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        CycleGANModel.modify_commandline_options(parser, is_train)
        add_guidance_options(parser, is_train)
        if is_train:
            parser.set_defaults(lambda_identity=0.0, n_epochs=50, n_epochs_decay=50)
        return parser

    def __init__(self, opt: argparse.Namespace, device: torch.device) -> None:
        self.batch_keys: dict[str, Any] = {}
        super().__init__(opt, device)

    def set_input(self, batch: dict[str, Any]) -> None:
        super().set_input(batch)
        self.keep_keys(batch, "AB")

    def generator_input(self, side: str, image: torch.Tensor, real: bool) -> torch.Tensor:
        return self.guided(side, image, stored=real)

    def judge(self, name: str, image: torch.Tensor) -> torch.Tensor:
        out: DiscriminatorOutput = self.networks[name](image)
        if image is self.fake_B or image is self.fake_A:  # the generator step: D's map of this translation
            self.given["A" if image is self.fake_B else "B"] = out.attention
        return out.realness

    def inference_module(self, direction: str = "AtoB", target_domain: str | None = None) -> torch.nn.Module:
        generator = self.networks["G_A" if direction == "AtoB" else "G_B"].network
        return GuidedTranslator(generator, self.networks["T"].network, self.opt.join,
                                self.test_levels.get("A" if direction == "AtoB" else "B", 1.0))

    def generator_losses(self) -> dict[str, torch.Tensor]:
        losses = super().generator_losses()
        losses["G_A"] = self.opt.lambda_gan * losses["G_A"]
        losses["G_B"] = self.opt.lambda_gan * losses["G_B"]
        return losses

    def optimize_parameters(self) -> dict[str, float]:
        losses = super().optimize_parameters()
        for side, attention in self.given.items():
            self.remember(side, attention)
        return losses

    def current_visuals(self) -> dict[str, Visual]:
        visuals = super().current_visuals()
        for side, other, fake, real in (("A", "B", self.fake_B, self.real_B), ("B", "A", self.fake_A, self.real_A)):
            visuals[f"guide_{side}"] = Visual(self.feeding.get(side, torch.ones_like(fake[:, :1])), side, "mask")
            if f"D_{side}" in self.networks:
                with torch.no_grad():
                    visuals[f"d_attention_{side}"] = Visual(self.networks[f"D_{side}"](fake).attention, side, "attention")
                    visuals[f"d_attention_real_{other}"] = Visual(self.networks[f"D_{side}"](real).attention, other, "mask")
        return visuals

    def load_networks(self, saved: dict[str, dict[str, torch.Tensor]], names: list[str]) -> None:
        """At test time the discriminators are loaded too when present, for their maps on the page."""
        extra = [n for n in ("D_A", "D_B") if n in saved and n not in self.networks]
        for name in extra:
            side_nc = self.opt.output_nc if name == "D_A" else self.opt.input_nc
            self.add_network(name, self.attentive_discriminator(side_nc), init=False, trainable=False)
        super().load_networks(saved, names + extra)


@register_model("guidegan_paired")
class GuideGANPairedModel(Guided, Pix2PixModel):
    architecture_options = Pix2PixModel.architecture_options + ("d_attention", "join", "transfer")

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        Pix2PixModel.modify_commandline_options(parser, is_train)
        add_guidance_options(parser, is_train)
        parser.set_defaults(norm="instance", test_map="mean")  # the U-Net is not invariant to the map's level
        if is_train:
            parser.set_defaults(gan_mode="lsgan", lambda_L1=10.0, n_epochs=100, n_epochs_decay=100)
        return parser

    def __init__(self, opt: argparse.Namespace, device: torch.device) -> None:
        self.batch_keys: dict[str, Any] = {}
        super().__init__(opt, device)

    @property
    def loss_weights(self) -> tuple[float, float]:
        return self.opt.lambda_gan, self.opt.lambda_L1

    def inference_module(self, direction: str = "AtoB", target_domain: str | None = None) -> torch.nn.Module:
        Pix2PixModel.inference_module(self, direction)  # the same one-direction check
        return GuidedTranslator(self.networks["G"].network, self.networks["T"].network, self.opt.join,
                                self.test_levels.get("A", 1.0))

    def set_input(self, batch: dict[str, Any]) -> None:
        super().set_input(batch)
        self.keep_keys(batch, "A")

    def generator_input(self, image: torch.Tensor) -> torch.Tensor:
        return self.guided("A", image, stored=True)

    def judge(self, pair: torch.Tensor) -> torch.Tensor:
        out: DiscriminatorOutput = self.networks["D"](pair)
        if not any(p.requires_grad for p in self.networks["D"].parameters()):  # the generator step
            self.given["A"] = out.attention
        return out.realness

    def optimize_parameters(self) -> dict[str, float]:
        losses = super().optimize_parameters()
        if "A" in self.given:
            self.remember("A", self.given["A"])
        return losses

    def current_visuals(self) -> dict[str, Visual]:
        visuals = super().current_visuals()
        visuals["guide_A"] = Visual(self.feeding.get("A", torch.ones_like(self.real_A[:, :1])), "A", "mask")
        if "D" in self.networks:
            with torch.no_grad():
                netD = self.networks["D"]
                visuals["d_attention_A"] = Visual(netD(torch.cat([self.real_A, self.fake_B], 1)).attention, "A", "attention")
                visuals["d_attention_real_B"] = Visual(netD(torch.cat([self.real_A, self.real_B], 1)).attention, "B", "mask")
        return visuals

    def load_networks(self, saved: dict[str, dict[str, torch.Tensor]], names: list[str]) -> None:
        if "D" in saved and "D" not in self.networks:
            opt = self.opt
            self.add_network("D", self.attentive_discriminator(opt.input_nc + opt.output_nc), init=False, trainable=False)
            names = [*names, "D"]
        super().load_networks(saved, names)
