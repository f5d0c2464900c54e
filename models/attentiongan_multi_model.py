"""Multi-domain AttentionGAN: AttentionGAN's attention-guided generator with StarGAN's domain
classification loss (papers/attentiongan_tang.txt, Sec. 4, Fig. 8-12, Table 5; Choi et al.,
StarGAN, CVPR 2018).

One generator translates an image ``x`` of domain ``c_org`` to any domain ``c``:
``G(x, c)``, conditioned by the one-hot label ``c`` replicated into ``k`` maps joined to its
input (StarGAN Sec. 3.3). The generator is AttentionGAN's (scheme II by default: ``n-1``
content images and ``n`` softmax masks with the background last, Eq. 2,
``G(x, c) = sum_i C_i A_i + x A_b``; ``--scheme I`` for one mask and one content, Eq. 1).
The authors' multi-domain code runs scheme I. Scheme II is the default because it is the one
that translates: on the 3-domain built-in set (seeds 0 and 1, docs/benchmark.md, "Scheme I or
II") scheme I mostly copies its input (mean change 0.001-0.04; judged target 0.19 averaged
over the targets, against 0.64 for scheme II), as the AttentionGAN paper reports for scheme I
on natural images.

The discriminator ``D`` (:class:`models.networks.StarGANDiscriminator`) has a realness head
``D_src`` and a domain classifier ``D_cls``. Losses (StarGAN Eq. 1-6):

- adversarial, WGAN-GP by default (``--gan_mode wgangp``, gradient penalty ``--lambda_gp 10``;
  ``--gan_mode lsgan`` selectable);
- domain classification: ``L_cls^r = -log D_cls(c_org | x)`` for ``D`` on real images and
  ``L_cls^f = -log D_cls(c | G(x, c))`` for ``G`` (cross-entropy over the ``k`` domains),
  weight ``--lambda_cls 1``;
- reconstruction ``|x - G(G(x, c), c_org)|_1``, weight ``--lambda_rec 10``;
- optionally AttentionGAN's total-variation loss on the foreground attention (``--lambda_tv``).

``L_D = L_adv + lambda_cls L_cls^r (+ GP)``; ``L_G = L_adv + lambda_cls L_cls^f + lambda_rec L_rec``.
StarGAN's optimiser defaults: Adam lr 1e-4, betas (0.5, 0.999), ``D`` updated every step and
``G`` every ``--n_critic 5`` steps, batch 16.

Data: ``--dataset_mode multidomain`` (``train/<domain>/``, masks in ``train/<domain>_mask/``);
each image comes with a random target domain drawn from the *other* domains, so a target
never equals the source. StarGAN draws its targets from shuffled labels, so there the target
sometimes is the source and ``G`` also learns to return such an image unchanged; here that
case is seen only inside the reconstruction ``G(G(x, c), c_org)``. Without ``--dataroot`` the built-in synthetic
set with ``--synthetic_domains`` (3) domains: plain, striped, spotted (and checked) objects.
At test time every image is translated to every domain (``fake_to_<domain>`` with its
foreground attention ``attention_to_<domain>``).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import torch
import torch.nn.functional as F

from models import networks
from models.attention import AttentionGeneratorI, AttentionGeneratorII, AttentionMonitor, AttentionOutput, tv_loss
from models.base_model import BaseModel, Visual
from models.inference import ConditionedTranslator
from models.registry import register_model
from util.errors import UserError


def label_maps(domains: torch.Tensor, n_domains: int, like: torch.Tensor) -> torch.Tensor:
    """One-hot domain labels replicated to ``B x k x H x W`` maps (StarGAN's conditioning)."""
    one_hot = F.one_hot(domains.long(), n_domains).to(like.dtype)
    return one_hot[:, :, None, None].expand(-1, -1, *like.shape[-2:])


@register_model("attentiongan_multi")
class AttentionGANMultiModel(BaseModel):
    architecture_options = ("netG", "ngf", "norm", "no_dropout", "input_nc", "output_nc", "scheme", "n_attention",
                            "domain_names")

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(no_dropout=True, dataset_mode="multidomain")
        parser.add_argument("--scheme", type=str, default="II", choices=("I", "II"), help="attention-guided generation scheme")
        parser.add_argument("--n_attention", type=int, default=10, help="scheme II: n masks (n-1 foreground + background)")
        parser.add_argument("--synthetic_domains", type=int, default=3,
                            help="without --dataroot: domains of the built-in multi-domain set (2-4)")
        if is_train:
            g = parser.add_argument_group("multi-domain (StarGAN losses)")
            g.add_argument("--lambda_cls", type=float, default=1.0, help="weight of the domain classification losses")
            g.add_argument("--lambda_rec", type=float, default=10.0, help="weight of the reconstruction loss")
            g.add_argument("--lambda_gp", type=float, default=10.0, help="weight of the gradient penalty (wgangp)")
            g.add_argument("--lambda_tv", type=float, default=0.0, help="weight of the TV loss on the attention (optional)")
            g.add_argument("--n_critic", type=int, default=5, help="discriminator updates per generator update")
            g.add_argument("--d_repeat", type=int, default=6,
                           help="stride-2 layers of the discriminator (capped for small images)")
            parser.set_defaults(gan_mode="wgangp", lr=0.0001, beta1=0.5, batch_size=16, pool_size=0)
        return parser

    @classmethod
    def validate_options(cls, opt: argparse.Namespace) -> list[str]:
        problems = super().validate_options(opt) if networks.is_resnet(opt.netG) else [
            f"--netG {opt.netG}: this model's generator is ResNet-based; use resnet_9blocks or resnet_6blocks"]
        if opt.scheme == "II" and opt.n_attention < 2:
            problems.append(f"--n_attention {opt.n_attention}: scheme II needs at least 2 masks")
        if not 2 <= opt.synthetic_domains <= 4:
            problems.append(f"--synthetic_domains {opt.synthetic_domains}: must be 2, 3 or 4")
        if opt.isTrain:
            if opt.n_critic < 1:
                problems.append(f"--n_critic {opt.n_critic}: must be >= 1")
            if opt.gan_mode not in ("wgangp", "lsgan", "vanilla"):
                problems.append(f"--gan_mode {opt.gan_mode}: use wgangp (StarGAN) or lsgan")
            if opt.d_repeat < 1:
                problems.append(f"--d_repeat {opt.d_repeat}: must be >= 1")
        return problems

    @classmethod
    def discriminator_min_size(cls, opt: argparse.Namespace) -> int:
        return 2

    def __init__(self, opt: argparse.Namespace, device: torch.device) -> None:
        super().__init__(opt, device)
        if not getattr(opt, "domain_names", None):
            raise UserError("--model attentiongan_multi needs a multi-domain dataset (--dataset_mode multidomain: "
                            "DATAROOT/train/<domain>/ folders)")
        self.domains = list(opt.domain_names)
        k = len(self.domains)
        n_blocks = networks.resnet_block_count(opt.netG)
        if opt.scheme == "I":
            generator = AttentionGeneratorI(opt.input_nc, opt.output_nc, opt.ngf, opt.norm, not opt.no_dropout, n_blocks,
                                            condition_nc=k)
        else:
            generator = AttentionGeneratorII(opt.input_nc, opt.output_nc, opt.ngf, opt.norm, not opt.no_dropout, n_blocks,
                                             opt.n_attention, condition_nc=k)
        self.add_network("G", generator)
        self.monitor = AttentionMonitor()
        self.steps = 0
        if self.is_train:
            repeat = min(opt.d_repeat, int(math.log2(opt.crop_size)))
            self.add_network("D", networks.StarGANDiscriminator(opt.output_nc, opt.ndf, k, opt.crop_size, repeat),
                             train_only=True)
            self.gan_loss = networks.GANLoss(opt.gan_mode).to(device)
            self.add_optimizer("G", self.trainable_parameters(discriminators=False))
            self.add_optimizer("D", self.trainable_parameters(discriminators=True))

    # ------------------------------------------------------------------ translation
    def set_input(self, batch: dict[str, Any]) -> None:
        self.real = batch["A"].to(self.device)
        self.source = torch.as_tensor(batch["A_domain"], device=self.device).long()
        target = batch.get("target_domain")
        self.target = torch.as_tensor(target, device=self.device).long() if target is not None else self.source

    def translate(self, image: torch.Tensor, domains: torch.Tensor) -> AttentionOutput:
        return self.networks["G"](image, label_maps(domains, len(self.domains), image))

    def forward(self) -> None:
        if not self.is_train:
            self.to_every_domain = [self.translate(self.real, torch.full_like(self.source, t)) for t in range(len(self.domains))]
            return
        self.out = self.translate(self.real, self.target)
        self.fake = self.out.image
        self.rec = self.translate(self.fake, self.source).image

    def inference_module(self, direction: str = "AtoB", target_domain: str | None = None) -> torch.nn.Module:
        if target_domain not in self.domains:
            raise UserError(f"--target_domain must be one of the model's domains {self.domains}, got {target_domain!r}")
        return ConditionedTranslator(self.networks["G"].network, len(self.domains), self.domains.index(target_domain))

    # ------------------------------------------------------------------ losses
    def judge(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(D_src, D_cls)``: realness map and domain logits."""
        return self.networks["D"](image)

    def optimize_parameters(self) -> dict[str, float]:
        opt = self.opt
        generator_step = self.steps % opt.n_critic == 0
        # Between generator steps the translation only feeds D: no graph through G is needed.
        with torch.set_grad_enabled(generator_step):
            self.forward()
        src_real, cls_real = self.judge(self.real)
        src_fake, _ = self.judge(self.fake.detach())
        d_losses = {
            "D_real": self.gan_loss(src_real, True),
            "D_fake": self.gan_loss(src_fake, False),
            "D_cls": opt.lambda_cls * F.cross_entropy(cls_real, self.source),
        }
        if opt.gan_mode == "wgangp":
            d_losses["D_gp"] = networks.gradient_penalty(lambda x: self.judge(x)[0], self.real, self.fake, opt.lambda_gp)
        self.minimize("D", d_losses)
        losses = dict(d_losses)
        if generator_step:
            networks.set_requires_grad(self.networks["D"], False)
            src, cls = self.judge(self.fake)
            g_losses = {
                "G_adv": self.gan_loss(src, True),
                "G_cls": opt.lambda_cls * F.cross_entropy(cls, self.target),
                "G_rec": opt.lambda_rec * F.l1_loss(self.rec, self.real),
            }
            if opt.lambda_tv > 0:
                g_losses["tv"] = opt.lambda_tv * tv_loss(self.out.foreground)
            self.minimize("G", g_losses)
            networks.set_requires_grad(self.networks["D"], True)
            losses.update(g_losses)
        self.steps += 1
        result = {name: float(value.detach()) for name, value in losses.items()}
        result["mean_att"] = self.monitor.record("foreground", self.out.foreground)
        return result

    def epoch_diagnostics(self) -> list[str]:
        return self.monitor.end_epoch()

    def extra_state(self) -> dict[str, Any]:
        return {"steps": self.steps}  # which steps update G (n_critic) continues exactly on resume

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.steps = state.get("steps", 0)

    # ------------------------------------------------------------------ pictures
    def current_visuals(self) -> dict[str, Visual]:
        visuals = {"real_A": Visual(self.real, "A", "real")}
        if not self.is_train:
            for name, out in zip(self.domains, self.to_every_domain):
                visuals[f"fake_to_{name}"] = Visual(out.image, "A", "fake", target=name)
                visuals[f"attention_to_{name}"] = Visual(out.foreground, "A", "attention", target=name)
            return visuals
        visuals["fake"] = Visual(self.fake, "A", "fake")
        visuals["rec"] = Visual(self.rec, "A", "rec")
        visuals["attention"] = Visual(self.out.foreground, "A", "attention")
        return visuals
