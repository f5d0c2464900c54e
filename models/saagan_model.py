"""SAAGAN: salient-object translation with a class-activation-map prior (papers/saagan.txt).

Notation: ``G = G_A`` maps A to B with attention branch ``G_A(x)`` (here ``att_A``) and
translation branch ``G_T(x)``; ``F = G_B`` maps back. ``D_A`` judges B images (the paper's
``D_Y``), ``D_B`` judges A images (``D_X``). ``C`` is the frozen classifier.

- Eq. (1), Sec. 3.1: ``C(x) = f(x) . W_c``, the class activation map of a classifier whose last
  fully connected layer is a 1x1 convolution (:class:`models.classifier.DomainClassifier`,
  trained by ``scripts/train_cam_classifier.py``; frozen here). With the paper's ImageNet
  ResNet-50 only the new 1x1 layer is trained (``--finetune head``, that script's default for a
  pretrained backbone) at 256 px, so the CAM is 8x8. The CAM of the image's own class
  (``--cam own``) is normalised to [0, 1] per image and resized to the image (the same crop and
  flip the generator sees: it is computed on the batch itself).
  ``--cam difference`` uses the own map minus the other class's: with a two-class softmax head,
  ``w_A + w_B`` keeps its random initial value through training (the cross-entropy's gradients on
  the two rows cancel), so half of every own-class map is an untrained projection of the
  features; the difference is the trained part alone. Measured in docs/benchmark.md ("SAAGAN
  findings").
- Eq. (5): the ternary prior ``A(x)``: 0 where ``C(x) < theta_l`` (0.2), 1 where ``C(x) > theta_h``
  (0.7), 0.5 between (:func:`ternary_mask`). ``--attention_prior masks`` (Sec. 4.6, Table 6) uses
  the ground-truth masks instead, falling back to the CAM for images without one.
- Eq. (2): ``G(x) = G_A(x) * G_T(x) + (1 - G_A(x)) * x`` with the generator of Sec. 3.5
  (:class:`models.attention.BranchedAttentionGenerator`: the attention branch leaves after the
  4th residual block).
- Eq. (8)-(10), the revised adversarial loss: the PatchGAN's per-patch log loss weighted by
  ``A`` resized (bilinear) to the discriminator's output size: ``A(y)`` for real ``y``, ``A(x)``
  for the fake ``G(x)``. The generator minimises the non-saturating form of its term.
- Sec. 3.3.2, fake sample augmentation: ``A(x) * G_T(x) + (1 - A(x)) * x`` shown to the
  discriminator as an extra fake with the smooth label 0.3 (also weighted by ``A(x)``).
- Eq. (4), the enhanced cycle loss: ``|F(G(x)) - x|_1 + |G_A(x) - F_A(G(x))|_1``.
- Eq. (6), the attention loss: binary cross-entropy between ``G_A(x)`` and ``A(x)`` over the
  pixels where ``A`` is 0 or 1 (mean over them); the 0.5 pixels give no gradient.
- Eq. (7), smoothness: the mean absolute horizontal and vertical differences of ``G_A(x)``.
- Eq. (11): ``L_G = L'_adv + 8 L_cyc + 1 L_attn + 5 L_s`` (``--lambda_cycle --lambda_attention
  --lambda_smooth``).
- Sec. 3.5 / 4.1.2: PatchGAN of conv-BatchNorm-LeakyReLU blocks (the first one normalised
  too), sigmoid output and log loss, spectral normalisation; Adam lr 2e-4, beta1 0.5, batch 1,
  100 + 100 epochs; load 286 / crop 256.
- Algorithm 1: each iteration updates the discriminators first, then the generators (the
  CycleGAN-based models of this project do G first); both see the same forward pass.

Table 4 ablations: ``w/o smooth`` = ``--lambda_smooth 0``, ``w/o RA`` = ``--no_revised_adversarial``
(unweighted adversarial loss), ``w/o FSA`` = ``--no_fake_augmentation``, ``w/o cycle`` =
``--lambda_cycle 0``, ``w/o attention`` = ``--lambda_attention 0``.

Choices where the paper is silent: the generator's adversarial term is the non-saturating
``-log D(G(x))``; the weighted losses are means over the patch map (an image whose prior is all
background contributes nothing); the attention branch's second transposed convolution outputs
the one attention channel directly.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models import networks
from models.attention import AttentionOutput, BranchedAttentionGenerator, fuse_single, tv_loss
from models.attention_cycle import AttentionCycleModel, add_mask_supervision_options, add_switch
from models.base_model import Visual
from models.classifier import (
    CAM_KINDS,
    DomainClassifier,
    cam_resolution_problem,
    load_domain_classifier,
    normalised_cam,
    resize_for,
)
from models.registry import register_model
from util import distributed
from util.errors import UserError


def ternary_mask(cam: torch.Tensor, low: float = 0.2, high: float = 0.7) -> torch.Tensor:
    """Eq. (5): 0 below ``low``, 1 above ``high``, 0.5 in between (both ends inclusive)."""
    return torch.where(cam < low, torch.zeros_like(cam), torch.where(cam > high, torch.ones_like(cam), torch.full_like(cam, 0.5)))


def attention_loss(prediction: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Eq. (6): binary cross-entropy over the pixels where the prior is 0 or 1 only."""
    supervised = prior != 0.5
    if not bool(supervised.any()):
        return prediction.sum() * 0.0
    return F.binary_cross_entropy(prediction[supervised].clamp(1e-6, 1 - 1e-6), prior[supervised])


@register_model("saagan")
class SAAGANModel(AttentionCycleModel):
    discriminator_first = True  # Algorithm 1: D, then G, in every iteration
    own_patchgan = True

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(no_dropout=True, dataset_mode="unaligned")
        g = parser.add_argument_group("SAAGAN")
        g.add_argument("--theta_low", type=float, default=0.2, help="CAM below this: background (0) in the ternary mask")
        g.add_argument("--theta_high", type=float, default=0.7, help="CAM above this: object (1) in the ternary mask")
        g.add_argument(
            "--cam",
            type=str,
            default="own",
            choices=CAM_KINDS,
            help="the prior's map: the own class's CAM (own, Eq. 1) or own minus the other class's (difference: the "
            "part of the map that training shaped; see models/saagan_model.py)",
        )
        if is_train:
            g.add_argument(
                "--cam_classifier",
                type=str,
                default="",
                help="the frozen CAM classifier: a run name (CHECKPOINTS_DIR/NAME/classifier.pt) or a file; "
                "none: one is trained first (small backbone, saved as NAME_cam)",
            )
            g.add_argument("--lambda_cycle", type=float, default=8.0, help="weight of the enhanced cycle loss (Eq. 4)")
            g.add_argument("--lambda_attention", type=float, default=1.0, help="weight of the attention loss (Eq. 6)")
            g.add_argument("--lambda_smooth", type=float, default=5.0, help="weight of the smoothness loss (Eq. 7)")
            g.add_argument("--fake_label", type=float, default=0.3, help="label of the augmented fakes (Sec. 3.3.2)")
            add_switch(g, "revised_adversarial", True, "weight the adversarial loss by the prior (Eq. 8); off: w/o RA")
            add_switch(g, "fake_augmentation", True, "show fakes fused with the prior to D (Sec. 3.3.2); off: w/o FSA")
            add_switch(g, "spectral_norm", True, "spectral normalisation in the discriminators (Sec. 4.1.2)")
            # cam: the CAM's ternary mask supervises the attention; masks: the ground-truth masks (Table 6)
            # replace it in Eq. (5)-(10) where an image has one (weighted by --lambda_attention).
            add_mask_supervision_options(parser, priors=("cam", "masks"), default="cam", mask_loss=False)
            # The shared attention base's other terms are not part of Eq. (11).
            parser.set_defaults(
                gan_mode="vanilla", lambda_identity=0.0, lambda_gan=1.0, lambda_pixel=0.0, lambda_tv=0.0, curriculum=False,
                curriculum_epochs=0, r_early=1.0, r_late=1.0, attention_D=False, d_head="patch", real_pair_mask="own",
            )
        return parser

    @classmethod
    def validate_options(cls, opt: argparse.Namespace) -> list[str]:
        problems = super().validate_options(opt)
        if not 0 <= opt.theta_low <= opt.theta_high <= 1:
            problems.append(f"--theta_low {opt.theta_low} --theta_high {opt.theta_high}: need 0 <= low <= high <= 1")
        if opt.isTrain and not 0 <= opt.fake_label < 1:
            problems.append(f"--fake_label {opt.fake_label}: must be in [0, 1)")
        return problems

    # ------------------------------------------------------------------ networks
    def build_generator(self, input_nc: int, output_nc: int) -> nn.Module:
        opt = self.opt
        return BranchedAttentionGenerator(input_nc, output_nc, opt.ngf, opt.norm, not opt.no_dropout,
                                          networks.resnet_block_count(opt.netG))

    def build_discriminator(self, input_nc: int) -> nn.Module:
        """Sec. 3.5: conv-BN-LeakyReLU blocks (the first normalised too), spectral normalisation; the
        PatchGAN's depth from ``--netD``/``--n_layers_D`` (3, 70x70, by default)."""
        depth = networks.patchgan_depth(self.opt.netD, self.opt.n_layers_D)
        return networks.NLayerDiscriminator(input_nc, self.opt.ndf, depth, "batch",
                                            spectral_norm=self.opt.spectral_norm, norm_first=True)

    def add_generators(self) -> None:
        super().add_generators()
        if self.is_train:
            classifier = self.load_classifier()
            self.classifier_architecture = classifier.architecture()
            self.add_network("C", classifier, train_only=True, init=False, trainable=False)
            networks.set_requires_grad(classifier, False)
        self.prior_fallbacks = 0

    def load_classifier(self) -> DomainClassifier:
        """``--cam_classifier`` (a run name or a file), or a new one trained first when none is given."""
        opt = self.opt
        if opt.cam_classifier:
            path = Path(opt.cam_classifier)
            if not path.suffix:
                path = Path(opt.checkpoints_dir) / opt.cam_classifier / "classifier.pt"
        else:
            path = Path(opt.checkpoints_dir) / f"{opt.name}_cam" / "classifier.pt"
            if not path.is_file():
                if distributed.context().enabled:
                    raise UserError("under torchrun, train the CAM classifier first (scripts/train_cam_classifier.py) "
                                    "and pass --cam_classifier NAME")
                self.note(f"no --cam_classifier given: training one first (small backbone, 128 px), saved as {path}")
                from models.classifier_training import classifier_parser, train_classifier

                args = classifier_parser().parse_args(
                    ["--dataroot", opt.dataroot, "--out", str(path), "--size", "128", "--cam_page", "--seed", str(opt.seed),
                     "--gpu_ids", ",".join(map(str, opt.gpu_ids)) or "-1", *(["--no_progress"] if opt.no_progress else [])]
                )
                train_classifier(args)
        if not path.is_file():
            raise UserError(f"--cam_classifier {opt.cam_classifier}: {path} not found; train one with python "
                            f"scripts/train_cam_classifier.py --dataroot {opt.dataroot} --name NAME")
        model, info = load_domain_classifier(path, self.device)
        self.check_classifier_domains(path, info)
        if model.n_classes > 2 or len(info.get("domains") or "AB") != 2:
            raise UserError(f"CAM classifier {path} knows {len(info['domains'])} classes; SAAGAN needs one trained on "
                            f"the two domains (scripts/train_cam_classifier.py --dataroot {opt.dataroot})")
        problem = cam_resolution_problem(model.backbone, model.input_size)
        if problem:
            raise UserError(f"CAM classifier {path}: {problem} (retrain it with scripts/train_cam_classifier.py)")
        self.classifier_info = info
        accuracy = (info.get("accuracy") or {}).get("accuracy")
        self.note(f"CAM classifier {path}: {len(info.get('domains', {})) or 2} classes, held-out accuracy "
                  f"{accuracy:.3f}" if accuracy is not None else f"CAM classifier {path}")
        return model

    def check_classifier_domains(self, path: Path, info: dict[str, Any]) -> None:
        """The classifier's classes must be this run's A and B in that order: a classifier whose
        recorded class folders are this run's B and A folders would give each side the other's CAM."""
        recorded = [Path(folder).resolve() for folder in (info.get("domains") or {}).values()]
        root = Path(self.opt.dataroot).resolve() if self.opt.dataroot else None
        run = [root / f"{self.opt.phase}{side}" for side in ("AB" if self.opt.direction == "AtoB" else "BA")] if root else []
        if len(recorded) == 2 and recorded == run[::-1]:
            raise UserError(f"CAM classifier {path} has its classes the other way round: its class 0 is {recorded[0]}, "
                            f"this run's A side is {run[0]}. Train it on this data with scripts/train_cam_classifier.py "
                            f"(or check --direction)")
        # Checked again on the first training images, whatever the recorded folders say (see priors()).
        self.classifier_check = {"right": 0, "seen": 0, "path": str(path)}

    def architecture(self) -> dict[str, Any]:
        found = super().architecture()
        if hasattr(self, "classifier_architecture"):
            found["cam_classifier"] = self.classifier_architecture
        return found

    def set_mode(self, train: bool) -> None:
        super().set_mode(train)
        if "C" in self.networks:
            self.networks["C"].eval()  # frozen, batch norm statistics included

    # ------------------------------------------------------------------ the prior A(x)
    def own_class(self, side: str) -> int:
        """The classifier's class of the images on ``side`` (A is trainA unless --direction BtoA)."""
        return ("AB" if self.opt.direction == "AtoB" else "BA").index(side)

    #: Training images on which the classifier's accuracy is checked, and the accuracy that counts as chance.
    CLASSIFIER_CHECK_IMAGES, CHANCE_ACCURACY = 32, 0.65

    def check_classifier_on(self, images: torch.Tensor, classes: torch.Tensor) -> None:
        """Count the classifier's right answers on the first training images; warn once when the
        accuracy is near chance (a classifier of other data, or of swapped domains)."""
        check = getattr(self, "classifier_check", None)
        if check is None or check["seen"] >= self.CLASSIFIER_CHECK_IMAGES:
            return
        classifier = self.networks["C"].network
        with torch.no_grad():
            predicted = classifier(resize_for(images, classifier.input_size)).argmax(1)
        check["right"] += int((predicted == classes).sum())
        check["seen"] += int(classes.numel())
        if check["seen"] >= self.CLASSIFIER_CHECK_IMAGES:
            accuracy = check["right"] / check["seen"]
            if accuracy < self.CHANCE_ACCURACY:
                self.note(f"warning: CAM classifier {check['path']} is right on only {accuracy:.0%} of this run's first "
                          f"{check['seen']} training images (chance is 50%): its CAM prior will mislead the attention. "
                          f"Was it trained on this data, with A and B the same way round?")

    def priors(self) -> None:
        """``cam_X`` (normalised CAM of the own class) and ``prior_X`` (Eq. 5, or the masks) per side."""
        opt = self.opt
        for side, image in (("A", self.real_A), ("B", self.real_B)):
            classes = torch.full((image.shape[0],), self.own_class(side), device=image.device, dtype=torch.long)
            if self.is_train:
                self.check_classifier_on(image, classes)
            cam = normalised_cam(self.networks["C"].network, image, classes, opt.cam)
            prior = ternary_mask(cam, opt.theta_low, opt.theta_high)
            mask, has_mask = self.given_masks.get(side, (None, None))
            if getattr(opt, "attention_prior", "cam") == "masks" and mask is not None:
                has = has_mask.to(image.device).view(-1, 1, 1, 1)
                prior = torch.where(has, mask.to(image.device), prior)
                self.prior_fallbacks += int((~has).sum())
            setattr(self, f"cam_{side}", cam)
            setattr(self, f"prior_{side}", prior)

    # ------------------------------------------------------------------ losses
    def replay_loss(self, attention: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``--mask_replay``: Eq. (6) with the given mask as the prior, at ``--lambda_attention``."""
        return self.opt.lambda_attention * attention_loss(attention, mask.to(attention.device, attention.dtype))

    def weight(self, prior: torch.Tensor) -> torch.Tensor | None:
        return prior if self.opt.revised_adversarial else None

    def generator_terms(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Eq. (11): the weighted adversarial terms and the enhanced cycle, attention and smoothness terms."""
        opt, l1 = self.opt, F.l1_loss
        recon = {
            "cycle_A": opt.lambda_cycle * (l1(self.rec_A, self.real_A) + l1(self.cycle_A.foreground, self.att_A)),
            "cycle_B": opt.lambda_cycle * (l1(self.rec_B, self.real_B) + l1(self.cycle_B.foreground, self.att_B)),
            "attention_A": opt.lambda_attention * attention_loss(self.att_A, self.prior_A),
            "attention_B": opt.lambda_attention * attention_loss(self.att_B, self.prior_B),
            "smooth": opt.lambda_smooth * (tv_loss(self.att_A, "mean") + tv_loss(self.att_B, "mean")),
        }
        view = self.discriminator_view
        adversarial = {
            "G_A": self.gan_loss(self.networks["D_A"](view(self.fake_B, self.view_mask("A", self.att_A))), True,
                                 weight=self.weight(self.prior_A)),
            "G_B": self.gan_loss(self.networks["D_B"](view(self.fake_A, self.view_mask("B", self.att_B))), True,
                                 weight=self.weight(self.prior_B)),
        }
        return recon, adversarial

    def given_mask_terms(self) -> dict[str, torch.Tensor]:
        """None: with ``--attention_prior masks`` the masks enter Eq. (6) as the prior (``attention_*``)."""
        return {}

    def discriminator_losses(self) -> dict[str, torch.Tensor]:
        """Eq. (9)/(10), plus the augmented fakes with label 0.3; fakes are pooled with their prior."""
        losses = {}
        (real_B, real_view_B), (real_A, real_view_A) = self.judged_reals()
        # --d_mask objects: the real images are the replayed ones, whose prior is their given mask
        prior_B, prior_A = (real_view_B, real_view_A) if self.object_view else (self.prior_B, self.prior_A)
        view = self.discriminator_view
        for name, real, real_prior, real_view, side, out, prior, pool in (
            ("D_A", real_B, prior_B, real_view_B, "A", self.out_A, self.prior_A, self.fake_B_pool),
            ("D_B", real_A, prior_A, real_view_A, "B", self.out_B, self.prior_B, self.fake_A_pool),
        ):
            netD = self.networks[name]
            fake_view = self.view_mask(side, out.foreground).detach()  # the D step must not reach G (objects: soft)
            # a pool of size 0 returns its input; a fake is pooled with its prior (and its view mask)
            fake, fake_prior, pooled_view = (t.detach() for t in self.pool_with_masks(pool, out.image, prior, fake_view))
            loss = self.gan_loss(netD(view(real, real_view)), True, weight=self.weight(real_prior))
            loss = loss + self.gan_loss(netD(view(fake, pooled_view)), False, weight=self.weight(fake_prior))
            if self.opt.fake_augmentation:
                source = self.real_A if name == "D_A" else self.real_B
                augmented = fuse_single(out.contents[:, 0], prior, source).detach()
                loss = loss + self.gan_loss(netD(view(augmented, fake_view)), False, target=self.opt.fake_label,
                                            weight=self.weight(prior))
            losses[name] = loss
        return losses

    def optimize_parameters(self) -> dict[str, float]:
        self.priors()
        return super().optimize_parameters()

    def epoch_diagnostics(self) -> list[str]:
        messages = super().epoch_diagnostics()
        if self.is_train and self.opt.attention_prior == "masks" and self.prior_fallbacks:
            messages.append(f"{self.prior_fallbacks} image(s) had no ground-truth mask: their prior came from the CAM")
        self.prior_fallbacks = 0
        return messages

    # ------------------------------------------------------------------ test time and pictures
    def prepare_from_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Rebuild the frozen classifier from the checkpoint, so the test page shows the CAM and prior."""
        architecture = checkpoint.get("architecture", {}).get("cam_classifier")
        if architecture and "C" in checkpoint["state"]["networks"]:
            self.add_network("C", DomainClassifier(**architecture, backbone_weights="scratch"), init=False, trainable=False)
            self.classifier_architecture = architecture

    def test(self) -> None:
        super().test()
        if "C" in self.networks:
            with torch.no_grad():
                self.priors()

    def intermediate_visuals(self, side: str, out: AttentionOutput) -> dict[str, Visual]:
        visuals = {f"content_{side}": Visual(out.contents[:, 0], side, "content")}
        if hasattr(self, f"cam_{side}") and getattr(self, f"cam_{side}").shape[0] == out.image.shape[0]:
            visuals[f"cam_{side}"] = Visual(getattr(self, f"cam_{side}"), side, "mask")
            visuals[f"prior_{side}"] = Visual(getattr(self, f"prior_{side}"), side, "mask")
        return visuals
