"""UAIT: Unsupervised Attention-guided Image-to-Image Translation
(Mejjati, Richardt, Tompkin, Cosker, Kim; NeurIPS 2018; papers/uait_mejjati2018.txt).

Notation: ``S = A``, ``T = B``. Networks: ``G_A = F_{S->T}``, ``G_B = F_{T->S}``, the attention
networks ``A_A = A_S`` (on domain-A images) and ``A_B = A_T``, and the discriminators
``D_A = D_T``, ``D_B = D_S``. Each is a network of its own (a frozen attention network then
needs no gradient synchronisation under torchrun).

- Eq. (1): ``s' = A_S(s) * F_{S->T}(s) + (1 - A_S(s)) * s`` (:func:`models.attention.fuse_single`).
- Eq. (3): the cycle ``s'' = A_T(s') * F_{T->S}(s') + (1 - A_T(s')) * s'`` goes through the other
  side's attention network applied to ``s'`` (the base's forward: ``G_B(fake_B)``).
- Eq. (4): ``L = L_adv^s + L_adv^t + lambda_cyc (L_cyc^s + L_cyc^t)``, LSGAN, ``lambda_cyc = 10``,
  no identity term.
- Two stages (Sec. 3.2, Algorithm 1, Appendix C). For the first ``--switch_epoch`` epochs
  (30; the code's ``c < 30`` counting from 0) the discriminators see whole images and the
  attention networks train with the generators. From epoch ``switch_epoch + 1`` on the
  attention networks are frozen, the discriminators run without instance normalisation and
  see only the foreground, thresholded (Eq. 6-7): real ``t_new = t * [A_T(t) >= tau]`` (the
  real image's own domain's attention network), fake ``s'_new = F_{S->T}(s) * [A_S(s) >= tau]``,
  ``tau = 0.1``. The image pool keeps (image, mask) pairs. At test time the mask is continuous.
- Networks (Appendix A): generators ResNet-9, ngf 32, instance norm; discriminators the
  CycleGAN 70x70 PatchGAN with instance norm on every layer but the last (the first included);
  attention networks :class:`models.attention.UAITAttentionNetwork`.
- Adam lr 1e-4, beta1 0.5, batch 1, 100 epochs (50 constant + 50 linear decay), load 286 / crop 256.

Choices where the paper is ambiguous (documented, the alternative selectable):
- The attention network's first convolution has stride 2 (the authors' code): the printed
  table (stride 1 and two up-samplings) would double the output size.
- Eq. (6) shows the discriminator the generator's raw output ``F(s)`` inside the mask
  (``--fake_foreground generator``, default); the authors' code shows the fused ``s'``
  (``--fake_foreground fused``).
- The threshold is ``A >= tau`` as in the code (the paper writes ``>``).
- The attention networks' three convolutions after up-sampling: what the authors' code runs, all
  1x1 (``--attention_head authors``, the default: the kernel size lands in the wrong argument of
  their conv helper), or the paper's 3x3, 3x3, 7x7 (``--attention_head paper``). Measured with the
  paper's cycle weight 10 (docs/benchmark.md, "UAIT findings"): the paper's head shuts the masks
  within a few hundred images and the model copies its input on the built-in set and on
  horse2zebra; the authors' head keeps them open, translates on the built-in set (target rate
  0.60 / 0.76, masks on the objects) and keeps the background 6-9 dB better than cycle_gan, hence
  the default. See :class:`models.attention.UAITAttentionNetwork`.

Table 2 ablations:
- ``Ours-cycle``: ``--lambda_A 0 --lambda_B 0`` (no cycle loss);
- ``Ours-cycleAtt``: ``--cycle_attention source`` (the cycle reuses ``A_S(s)`` instead of ``A_T(s')``);
- ``Ours-As`` / ``Ours-At``: ``--attention_networks source`` / ``target`` (the missing network is
  all ones: that side translates the whole image, as CycleGAN). Each discriminator judges a real
  image through its own domain's network and a fake through the other's, so with one network
  the stage-2 discriminators see whole images on both sides (a masked real against a whole fake
  could be told apart by the black region alone); the attention network is still frozen;
- ``Ours-D``: ``--d_input whole`` (whole-image discriminators throughout; attention still frozen);
- ``Ours-D-A``: ``--d_input whole --no_freeze_attention``. ``--no_freeze_attention`` with the masked
  discriminators needs ``--fake_foreground fused``: with ``F(s)`` behind a thresholded mask the
  attention networks would get no adversarial gradient and only the cycle would pull the mask shut,
  so that combination is refused.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from torch import nn

from models import networks
from models.attention import AttentionOutput, UAITAttentionNetwork, fuse_single
from models.attention_cycle import (
    AttentionCycleModel,
    add_mask_gradient_option,
    add_mask_supervision_options,
    add_switch,
)
from models.base_model import Visual
from models.cycle_gan_model import add_cycle_loss_options
from models.inference import SeparateAttentionTranslator
from models.registry import register_model
from util.errors import UserError


def saved_attention_head(saved: dict[str, dict[str, torch.Tensor]]) -> str | None:
    """Which head a checkpoint's attention networks have, from the last convolution's kernel
    (7x7: paper, 1x1: authors); ``None`` without attention networks."""
    for name in ("A_A", "A_B"):
        weights = [v for k, v in saved.get(name, {}).items() if k.endswith(".weight") and v.dim() == 4]
        if weights:
            return "paper" if weights[-1].shape[-1] == 7 else "authors"
    return None


@register_model("uait")
class UAITModel(AttentionCycleModel):
    architecture_options = AttentionCycleModel.architecture_options + ("attention_networks", "ngf_attention",
                                                                       "attention_head")
    own_patchgan = True

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(no_dropout=True, dataset_mode="unaligned", ngf=32)
        parser.add_argument(
            "--attention_networks",
            type=str,
            default="both",
            choices=("both", "source", "target"),
            help="A_S and A_T (both), or only A_S / only A_T (Table 2: Ours-As, Ours-At); a missing one is all ones",
        )
        parser.add_argument("--ngf_attention", type=int, default=32, help="filters of the attention networks' first layer")
        parser.add_argument(
            "--attention_head",
            type=str,
            default="authors",
            choices=UAITAttentionNetwork.HEADS,
            help="the attention networks' convolutions after up-sampling: 3x3, 3x3, 7x7 (paper) or all 1x1 "
            "(authors: what their code runs)",
        )
        g = parser.add_argument_group("UAIT")
        g.add_argument("--switch_epoch", type=int, default=30, help="epochs of stage 1 (whole-image discriminators)")
        g.add_argument("--tau", type=float, default=0.1, help="threshold of the attention maps the discriminators see")
        if is_train:
            add_cycle_loss_options(parser)
            g.add_argument(
                "--d_input",
                type=str,
                default="foreground",
                choices=("foreground", "whole"),
                help="what the discriminators see in stage 2: the thresholded foreground (paper) or whole images (Ours-D)",
            )
            add_mask_gradient_option(g)
            add_mask_supervision_options(parser)
            add_switch(g, "freeze_attention", True, "freeze the attention networks in stage 2 (Ours-D-A turns it off)")
            g.add_argument(
                "--fake_foreground",
                type=str,
                default="generator",
                choices=("generator", "fused"),
                help="stage 2 fake inside the mask: F(s) (Eq. 6) or the fused s' (the authors' code)",
            )
            g.add_argument(
                "--cycle_attention",
                type=str,
                default="other",
                choices=("other", "source"),
                help="the cycle's mask: A_T(s') (other, paper) or A_S(s) again (source: Ours-cycleAtt)",
            )
            # Eq. (4) has none of the AGGAN/AttentionGAN extras of the shared base.
            parser.set_defaults(
                lr=0.0001, n_epochs=50, n_epochs_decay=50, lambda_identity=0.0, lambda_gan=1.0, lambda_pixel=0.0,
                lambda_tv=0.0, curriculum=False, curriculum_epochs=0, r_early=1.0, r_late=1.0, attention_D=False,
                d_head="patch", real_pair_mask="own",
            )
        return parser

    @classmethod
    def validate_options(cls, opt: argparse.Namespace) -> list[str]:
        problems = super().validate_options(opt)
        side = opt.crop_size if "crop" in opt.preprocess or not opt.isTrain else None
        if side is not None and side % 4:
            problems.append(f"--crop_size {side}: UAIT's attention networks halve the image twice; use a multiple of 4")
        if opt.switch_epoch < 0:
            problems.append(f"--switch_epoch {opt.switch_epoch}: must be >= 0")
        if not 0 <= opt.tau < 1:
            problems.append(f"--tau {opt.tau}: must be in [0, 1)")
        if opt.ngf_attention < 1:
            problems.append(f"--ngf_attention {opt.ngf_attention}: must be >= 1")
        if (opt.isTrain and not opt.freeze_attention and opt.d_input == "foreground"
                and opt.fake_foreground == "generator"):
            problems.append(
                "--no_freeze_attention with --d_input foreground and --fake_foreground generator: in stage 2 the "
                "discriminators would see F(s) through a thresholded mask, so the attention networks would get no "
                "adversarial gradient and the cycle loss alone would pull their masks shut. Add --fake_foreground "
                "fused (the discriminators then judge the fused s', which the mask shapes), or --d_input whole "
                "(Ours-D-A), or keep the attention frozen"
            )
        return problems

    # ------------------------------------------------------------------ networks
    def add_generators(self) -> None:
        """``G_A``, ``G_B`` (ResNet, ngf 32) and the attention networks ``A_A``, ``A_B`` the
        ``--attention_networks`` option keeps."""
        opt = self.opt
        for side, (in_nc, out_nc) in {"A": (opt.input_nc, opt.output_nc), "B": (opt.output_nc, opt.input_nc)}.items():
            self.add_network(f"G_{side}", networks.ResnetGenerator(in_nc, out_nc, opt.ngf, opt.norm, not opt.no_dropout,
                                                                   networks.resnet_block_count(opt.netG)))
        kept = {"both": "AB", "source": "A", "target": "B"}[opt.attention_networks]
        for side in kept:
            self.add_network(f"A_{side}", UAITAttentionNetwork(opt.input_nc if side == "A" else opt.output_nc,
                                                               opt.ngf_attention, opt.attention_head))

    def translate(self, side: str, image: torch.Tensor, mask: torch.Tensor | None = None) -> AttentionOutput:
        """Eq. (1) for an image of domain ``side``; without its attention network the mask is all
        ones; ``mask`` replaces the attention (the cycleAtt ablation)."""
        content = self.networks[f"G_{side}"](image)
        if mask is None:
            attention = self.networks.get(f"A_{side}")
            mask = attention(image) if attention is not None else torch.ones_like(image[:, :1])
        return AttentionOutput(fuse_single(content, mask, image), mask, mask, content.unsqueeze(1))

    def inference_module(self, direction: str = "AtoB", target_domain: str | None = None) -> nn.Module:
        side = "A" if direction == "AtoB" else "B"
        attention = self.networks.get(f"A_{side}")
        return SeparateAttentionTranslator(self.networks[f"G_{side}"].network, attention.network if attention else None)

    def prepare_from_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Test and translate a checkpoint whose attention networks have the other head (older
        checkpoints do not record ``--attention_head``; their weights say which it is)."""
        head = saved_attention_head(checkpoint["state"]["networks"])
        if head is None or head == self.opt.attention_head:
            return
        self.note(f"the checkpoint's attention networks have the {head} head (--attention_head {head}): using it")
        self.opt.attention_head = head
        for side in "AB":
            if f"A_{side}" in self.networks:
                self.add_network(f"A_{side}", UAITAttentionNetwork(self.opt.input_nc if side == "A" else self.opt.output_nc,
                                                                   self.opt.ngf_attention, head))

    def load_networks(self, saved: dict[str, dict[str, torch.Tensor]], names: list[str]) -> None:
        head = saved_attention_head(saved)
        if head is not None and head != self.opt.attention_head:
            raise UserError(f"the checkpoint's attention networks have the {head} head; pass --attention_head {head} "
                            f"to resume it")
        super().load_networks(saved, names)

    def build_discriminator(self, input_nc: int) -> nn.Module:
        """The 70x70 PatchGAN with instance norm on every layer but the last (Appendix A, the first
        one included), switched off in stage 2; its depth from ``--netD``/``--n_layers_D``."""
        norm = "switchable_instance" if self.opt.norm == "instance" else self.opt.norm
        depth = networks.patchgan_depth(self.opt.netD, self.opt.n_layers_D)
        return networks.NLayerDiscriminator(input_nc, self.opt.ndf, depth, norm, norm_first=True)

    @property
    def attention_networks(self) -> list[nn.Module]:
        return [net for name, net in self.networks.items() if name.startswith("A_")]

    # ------------------------------------------------------------------ stages
    @property
    def second_stage(self) -> bool:
        """Past ``--switch_epoch`` (at test time: the checkpoint was trained past it)."""
        return self.epoch > self.opt.switch_epoch

    @property
    def masked_discriminators(self) -> bool:
        """Whether the discriminators now see the thresholded foreground (Eq. 6-7).

        Only in stage 2, with ``--d_input foreground`` and both attention networks. Each
        discriminator judges a real image of one domain through that domain's attention network
        and a fake through the other's, so with one network missing (Ours-As / Ours-At) one of
        the two would be masked and the other whole: the discriminator could tell real from fake
        by the black region alone. Such runs keep whole images for both, as Ours-D does.
        """
        if self.given_mask_view:  # --d_mask given: masked from the start, by given masks or A >= tau
            return True
        return (self.second_stage and getattr(self.opt, "d_input", "foreground") == "foreground"
                and self.opt.attention_networks == "both")

    @property
    def own_mask_threshold(self) -> float:
        return self.opt.tau

    def on_epoch_start(self, epoch: int) -> None:
        was_second = self.second_stage
        super().on_epoch_start(epoch)
        if not self.is_train:
            return
        if self.second_stage and not was_second:
            frozen = "frozen" if self.opt.freeze_attention else "still training (--no_freeze_attention)"
            if self.masked_discriminators:
                seen = "the thresholded foreground, without instance norm"
            elif self.opt.d_input == "whole":
                seen = "whole images (--d_input whole)"
            else:
                seen = (f"whole images (--attention_networks {self.opt.attention_networks}: with one attention network "
                        f"a masked real and a whole fake would meet in one discriminator)")
            self.note(f"UAIT stage 2 from epoch {epoch}: attention networks {frozen}; discriminators see {seen}")
        for net in self.discriminators:
            networks.set_instance_norm(net, not self.masked_discriminators)
        networks.set_requires_grad(self.attention_networks, not (self.second_stage and self.opt.freeze_attention))

    def discriminator_view(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Eq. (6): in stage 2 only the pixels whose attention reaches ``tau`` (all of it before); with
        ``--d_mask given`` the given-or-own mask (already binary)."""
        if self.masked_discriminators:
            return image * (mask >= self.opt.tau).to(image.dtype)
        return image

    def fakes_for_discriminators(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.masked_discriminators and self.opt.fake_foreground == "generator":
            return self.out_A.contents[:, 0], self.out_B.contents[:, 0]
        return self.fake_B, self.fake_A

    # ------------------------------------------------------------------ forward and pictures
    def forward(self) -> None:
        if not self.is_train or self.opt.cycle_attention == "other":
            super().forward()
        else:  # Ours-cycleAtt: the cycle reuses the first mask
            self.out_A, self.out_B = self.translate("A", self.real_A), self.translate("B", self.real_B)
            self.fake_B, self.att_A = self.out_A.image, self.out_A.foreground
            self.fake_A, self.att_B = self.out_B.image, self.out_B.foreground
            self.cycle_A = self.translate("B", self.fake_B, self.att_A)
            self.cycle_B = self.translate("A", self.fake_A, self.att_B)
            self.rec_A, self.rec_B = self.cycle_A.image, self.cycle_B.image

    def intermediate_visuals(self, side: str, out: AttentionOutput) -> dict[str, Visual]:
        """``F(x)``, and from stage 2 on the thresholded mask the discriminators saw."""
        visuals = {f"content_{side}": Visual(out.contents[:, 0], side, "content")}
        if self.masked_discriminators:
            visuals[f"d_mask_{side}"] = Visual((out.foreground >= self.opt.tau).float(), side, "mask")
        return visuals
