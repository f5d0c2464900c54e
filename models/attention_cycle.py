"""The training step shared by the cycle-consistent attention models (AGGAN, AttentionGAN).

Both papers optimise the same objective, Eq. (7)/(9) of AGGAN and Eq. (9) of AttentionGAN:

    L = [lambda_cycle * L_cycle + lambda_pixel * L_pixel (+ lambda_id * L_id)] * r
      + [lambda_gan * (L_GAN + L_AGAN) + lambda_tv * L_tv] * (1 - r)

with vanilla discriminators ``D_A``/``D_B`` on images and attention-guided ones
``D_AA``/``D_BA`` on ``[mask, image]`` pairs; ``r`` follows the curriculum (or the terms are
plainly summed when it is off). The models differ in the generator (scheme I or II), in
the discriminator head, and in their default weights; each model file sets those.

Naming follows CycleGAN: ``G_A: A -> B`` and ``D_A`` judges its output against real B;
``att_A`` is ``G_A``'s foreground attention on the A image it translates.
"""

from __future__ import annotations

import argparse
from typing import Any, ClassVar

import torch

from models import networks
from models.attention import (
    AttentionGeneratorI,
    AttentionMonitor,
    AttentionOutput,
    Curriculum,
    define_attention_discriminator,
    mask_bce,
    mask_image_pair,
    pooled_layers,
    tv_loss,
)
from models.base_model import BaseModel, Visual
from models.cycle_gan_model import add_cycle_loss_options, discriminator_loss
from models.inference import AttentionTranslator


def add_switch(group: argparse._ArgumentGroup, name: str, default: bool, help_text: str) -> None:
    """``--name`` / ``--no_name`` pair writing one boolean (underscores, like every other option)."""
    group.add_argument(f"--{name}", dest=name, action="store_true", help=help_text)
    group.add_argument(f"--no_{name}", dest=name, action="store_false", help=f"turn off --{name}")
    group.set_defaults(**{name: default})


def add_attention_options(
    parser: argparse.ArgumentParser,
    *,
    lambda_gan: float,
    lambda_pixel: float,
    lambda_tv: float,
    curriculum: bool,
    attention_D: bool,
    d_head: str,
) -> None:
    """Options of Eq. (9) and of the attention-guided discriminator, with a model's defaults."""
    add_cycle_loss_options(parser)
    g = parser.add_argument_group("attention losses (Eq. 9)")
    g.add_argument("--lambda_gan", type=float, default=lambda_gan, help="weight of the adversarial terms")
    g.add_argument("--lambda_pixel", type=float, default=lambda_pixel, help="weight of the pixel loss |G(x) - x|_1")
    g.add_argument("--lambda_tv", type=float, default=lambda_tv, help="weight of the total-variation loss on attention masks")
    add_switch(g, "curriculum", curriculum, "weight reconstruction terms by r and adversarial terms by 1-r (Eq. 9)")
    g.add_argument("--curriculum_epochs", type=int, default=10, help="epochs at r = --r_early")
    g.add_argument("--r_early", type=float, default=0.01, help="r during the curriculum epochs")
    g.add_argument("--r_late", type=float, default=0.5, help="r after them")
    add_switch(g, "attention_D", attention_D, "add attention-guided discriminators judging [mask, image] pairs")
    g.add_argument(
        "--d_head",
        type=str,
        default=d_head,
        choices=("pooled", "patch"),
        help="pooled: one score per image (AGGAN paper); patch: the --netD PatchGAN",
    )
    add_switch(g, "d_first_norm", True, "--d_head pooled: normalise the first C64 too (AGGAN Sec. III-D)")
    g.add_argument(
        "--real_pair_mask",
        type=str,
        default="fake",
        choices=("fake", "own"),
        help="mask paired with a real image for the attention-guided D: fake = the mask of the "
        "translation being judged (the papers' [M_y, y]); own = the other generator's mask on that real image",
    )
    add_mask_gradient_option(g)
    add_mask_supervision_options(parser)


def add_mask_supervision_options(
    parser: argparse.ArgumentParser, priors: tuple[str, ...] = ("none", "masks"), default: str = "none",
    mask_loss: bool = True,
) -> None:
    """Learning the attention from a few masks (any model with a blending mask): ``--attention_prior
    masks`` reads the ``<folder>_mask/`` files, ``--mask_fraction`` / ``--max_masks`` keep a seed-chosen
    subset of them (data/datasets.py), ``--lambda_mask`` weighs the BCE on the images that have one
    (``mask_loss``; SAAGAN feeds the masks to its own attention loss instead), ``--d_mask given`` shows
    the vanilla discriminators masked images."""
    g = parser.add_argument_group("learning the attention from masks")
    g.add_argument("--attention_prior", type=str, default=default, choices=priors,
                   help="masks: supervise the foreground attention with the <folder>_mask/ files that exist")
    if mask_loss:
        g.add_argument("--lambda_mask", type=float, default=1.0,
                       help="weight of the BCE between the foreground attention and the given masks")
    g.add_argument("--mask_fraction", type=float, default=1.0,
                   help="use the masks of this fraction of the training images only (a subset chosen by --seed)")
    g.add_argument("--max_masks", type=int, default=-1, help="and of at most this many images per domain (-1: no limit)")
    add_switch(g, "mask_replay", False,
               "every step also trains each side's foreground attention on one image drawn from those with a mask "
               "(with --lambda_mask's BCE; SAAGAN: its attention loss), so that a few masks weigh on every step")
    g.add_argument("--replay_jitter", type=float, default=0.0,
                   help="with --mask_replay: recolour each replayed object (brightness, contrast, saturation by "
                   "factors in [1-S, 1+S], hue by up to S/2 of the circle; its background untouched), so that a few "
                   "masks teach the attention objects of any colour (0: off)")
    g.add_argument("--d_mask", type=str, default="none", choices=("none", "given", "objects"),
                   help="given: the discriminators see images masked by their given mask, or where an image has "
                   "none, by the model's own attention thresholded at 0.5 (UAIT: at --tau); objects (needs "
                   "--mask_replay): their real images are the replayed ones through their given masks (objects on "
                   "black) and the translations are seen through the generator's own attention, which the "
                   "adversarial loss then shapes")
    g.add_argument("--d_mask_warmup", type=int, default=0,
                   help="with --d_mask given: for the first N epochs an image without a mask is shown to the "
                   "discriminators as zeros (it sends no adversarial signal), so the attention learns from the masks "
                   "before the discriminators look through it (0: look through it from the start)")


def mask_supervision_problems(opt: argparse.Namespace) -> list[str]:
    """Option values of :func:`add_mask_supervision_options` that cannot work."""
    if not opt.isTrain or not hasattr(opt, "mask_fraction"):
        return []
    problems = []
    if getattr(opt, "mask_gradient_freq", 0) < 0:
        problems.append(f"--mask_gradient_freq {opt.mask_gradient_freq}: must be >= 0 (0: off)")
    if not 0 <= opt.mask_fraction <= 1:
        problems.append(f"--mask_fraction {opt.mask_fraction}: must be in [0, 1]")
    if opt.max_masks < -1:
        problems.append(f"--max_masks {opt.max_masks}: must be >= 0, or -1 for no limit")
    uses_masks = opt.attention_prior == "masks"
    if not uses_masks and (opt.mask_fraction < 1 or opt.max_masks >= 0 or opt.d_mask != "none" or opt.mask_replay):
        given = (f"--d_mask {opt.d_mask}" if opt.d_mask != "none" else "--mask_replay" if opt.mask_replay
                 else "--mask_fraction/--max_masks")
        problems.append(f"{given} needs --attention_prior masks (the masks come from the <folder>_mask/ files)")
    if not 0 <= opt.replay_jitter <= 1:
        problems.append(f"--replay_jitter {opt.replay_jitter}: must be in [0, 1] (0: off)")
    elif opt.replay_jitter and not (uses_masks and opt.mask_replay):
        problems.append("--replay_jitter needs --attention_prior masks --mask_replay (it recolours the replayed objects)")
    elif opt.replay_jitter and opt.d_mask == "objects":
        problems.append("--replay_jitter with --d_mask objects: the discriminators would take the recoloured replayed "
                        "objects as real ones; use --d_mask given")
    if opt.d_mask_warmup < 0:
        problems.append(f"--d_mask_warmup {opt.d_mask_warmup}: must be >= 0 (0: off)")
    elif opt.d_mask_warmup and opt.d_mask != "given":
        problems.append(f"--d_mask_warmup {opt.d_mask_warmup} needs --d_mask given (it delays the discriminators' "
                        "look through the model's own attention)")
    if uses_masks and opt.d_mask == "objects" and not opt.mask_replay:
        problems.append("--d_mask objects needs --mask_replay (the discriminators' real objects are the replayed "
                        "images through their masks)")
    if uses_masks and opt.d_mask == "objects" and opt.model == "uait":
        problems.append("--d_mask objects: UAIT thresholds the attention it masks its discriminators with (--tau), "
                        "so the adversarial loss could not shape it; use --d_mask given")
    if uses_masks and getattr(opt, "lambda_mask", 1.0) < 0:
        problems.append(f"--lambda_mask {opt.lambda_mask}: must be >= 0")
    return problems


def add_mask_gradient_option(group: argparse._ArgumentGroup) -> None:
    """``--mask_gradient_freq``: a diagnostic of which loss term moves the masks (see :func:`mask_gradient_norms`)."""
    group.add_argument("--mask_gradient_freq", type=int, default=0,
                       help="every N steps, log the norm of the gradient each weighted generator term sends to the "
                       "mask logits (grad_<term>; the latest values appear in every log line); 0: off")


def mask_gradient_norms(terms: dict[str, torch.Tensor], masks: list[torch.Tensor]) -> dict[str, float]:
    """For each term, the norm of its gradient with respect to the logits of the sigmoid ``masks``
    (``dL/dz = dL/dM * M * (1 - M)``; for scheme II's softmax, the same factor on the total
    foreground attention). Terms that do not reach the masks give 0. The graph is kept."""
    norms = {}
    for name, term in terms.items():
        if not term.requires_grad:
            norms[f"grad_{name}"] = 0.0
            continue
        grads = torch.autograd.grad(term.float(), masks, retain_graph=True, allow_unused=True)
        squared = sum(float(((g.float() * m.detach().float() * (1 - m.detach().float())) ** 2).sum())
                      for g, m in zip(grads, masks) if g is not None)
        norms[f"grad_{name}"] = squared ** 0.5
    return norms


class AttentionCycleModel(BaseModel):
    """Base of cycle-consistent attention models; subclasses provide :meth:`build_generator`."""

    architecture_options = ("netG", "ngf", "norm", "no_dropout", "input_nc", "output_nc")

    @classmethod
    def validate_options(cls, opt: argparse.Namespace) -> list[str]:
        if not networks.is_resnet(opt.netG):
            return [f"--netG {opt.netG}: this model's generator is ResNet-based; use resnet_9blocks or resnet_6blocks"]
        return super().validate_options(opt) + mask_supervision_problems(opt)

    #: The discriminators are PatchGAN-shaped blocks of the model's own (SAAGAN, UAIT) whatever
    #: ``--d_head`` says: they take their depth from ``--netD``/``--n_layers_D`` and have no pixel variant.
    own_patchgan: ClassVar[bool] = False

    @classmethod
    def discriminator_min_size(cls, opt: argparse.Namespace) -> int:
        if getattr(opt, "d_head", "patch") == "pooled":
            return networks.min_input_size(pooled_layers(networks.patchgan_depth(opt.netD, opt.n_layers_D)))
        if cls.own_patchgan:
            return networks.patchgan_min_size(opt.netD, opt.n_layers_D)
        return super().discriminator_min_size(opt)

    def build_generator(self, input_nc: int, output_nc: int) -> torch.nn.Module:
        """Scheme I (AGGAN's generator) by default; AttentionGAN overrides it for scheme II."""
        opt = self.opt
        n_blocks = networks.resnet_block_count(opt.netG)
        return AttentionGeneratorI(input_nc, output_nc, opt.ngf, opt.norm, not opt.no_dropout, n_blocks)

    def intermediate_visuals(self, side: str, out: AttentionOutput) -> dict[str, Visual]:
        """Every mask and content image of one generator; scheme I has one content image."""
        return {f"content_{side}": Visual(out.contents[:, 0], side, "content")}

    def add_generators(self) -> None:
        """``G_A: A -> B`` and ``G_B: B -> A`` (UAIT adds its separate attention networks here)."""
        self.add_network("G_A", self.build_generator(self.opt.input_nc, self.opt.output_nc))
        self.add_network("G_B", self.build_generator(self.opt.output_nc, self.opt.input_nc))

    def translate(self, side: str, image: torch.Tensor) -> AttentionOutput:
        """Translate an image of domain ``side`` with its generator (``G_A`` for ``"A"``)."""
        return self.networks[f"G_{side}"](image)

    def inference_module(self, direction: str = "AtoB", target_domain: str | None = None) -> torch.nn.Module:
        return AttentionTranslator(self.networks["G_A" if direction == "AtoB" else "G_B"].network)

    def __init__(self, opt: argparse.Namespace, device: torch.device) -> None:
        super().__init__(opt, device)
        self.add_generators()
        self.monitor = AttentionMonitor()
        self.steps_taken = 0  # in this process since it started (for --mask_gradient_freq)
        self.given_masks: dict[str, tuple[Any, Any]] = {}  # per side: (masks, has_mask) of the batch
        self.replay: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # per side: --mask_replay's (image, mask)
        self.mask_gradients: dict[str, float] = {}
        self.noted_warmup: bool | None = None  # what on_epoch_start last said of --d_mask_warmup
        if not self.is_train:
            return
        self.add_network("D_A", self.build_discriminator(opt.output_nc), train_only=True)
        self.add_network("D_B", self.build_discriminator(opt.input_nc), train_only=True)
        if opt.attention_D:
            self.add_network("D_AA", self.build_discriminator(1 + opt.output_nc), train_only=True)
            self.add_network("D_BA", self.build_discriminator(1 + opt.input_nc), train_only=True)
        # Fakes are pooled together with their masks, so a pooled pair stays a pair.
        self.fake_B_pool, self.fake_A_pool = self.add_pool("fake_B"), self.add_pool("fake_A")
        self.curriculum = Curriculum(opt.curriculum, opt.curriculum_epochs, opt.r_early, opt.r_late)
        self.gan_loss = networks.GANLoss(opt.gan_mode).to(device)
        self.add_optimizer("G", self.trainable_parameters(discriminators=False))
        self.add_optimizer("D", self.trainable_parameters(discriminators=True))

    def build_discriminator(self, input_nc: int) -> torch.nn.Module:
        """The ``--d_head`` discriminator (pooled score or PatchGAN)."""
        return define_attention_discriminator(self.opt.d_head, input_nc, self.opt)

    @property
    def given_mask_view(self) -> bool:
        """``--d_mask given`` or ``objects``: the vanilla discriminators see images through masks."""
        return getattr(self.opt, "d_mask", "none") in ("given", "objects")

    @property
    def object_view(self) -> bool:
        """``--d_mask objects``: real objects from the replay, translations through their attention."""
        return getattr(self.opt, "d_mask", "none") == "objects"

    #: Where the model's own attention counts as object for ``--d_mask given`` (UAIT: ``--tau``).
    own_mask_threshold = 0.5

    @property
    def own_view_warming_up(self) -> bool:
        """``--d_mask_warmup``: in its first epochs an image without a mask is seen as zeros."""
        return self.is_train and self.epoch <= getattr(self.opt, "d_mask_warmup", 0)

    def given_or_own(self, side: str, attention: torch.Tensor) -> torch.Tensor:
        """Per image of ``side``: its given mask where it has one, else ``attention >= own_mask_threshold``
        (zeros during ``--d_mask_warmup``)."""
        own = (attention.detach() >= self.own_mask_threshold).to(attention.dtype)
        if self.own_view_warming_up:
            own = torch.zeros_like(own)
        mask, has = self.given_masks.get(side, (None, None))
        if mask is None:
            return own
        return torch.where(has.to(own.device).bool().view(-1, 1, 1, 1), mask.to(own.device, own.dtype), own)

    def view_mask(self, side: str, attention: torch.Tensor) -> torch.Tensor:
        """The mask a translation of a ``side`` image is judged through: the generator's attention
        (which :meth:`discriminator_view` ignores unless a model masks, and which ``--d_mask objects``
        keeps soft and differentiable), or with ``--d_mask given`` the source image's given-or-own mask."""
        return self.given_or_own(side, attention) if self.given_mask_view and not self.object_view else attention

    def real_view_masks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The masks real B and real A images are judged through (see :meth:`view_mask`)."""
        if self.given_mask_view:
            return self.given_or_own("B", self.att_B), self.given_or_own("A", self.att_A)
        return self.real_pair_masks()

    def judged_reals(self) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """``((image, view mask) judged real by D_A, the same for D_B)``: this batch's real B and A through
        :meth:`real_view_masks`, or with ``--d_mask objects`` the replayed B and A through their given masks."""
        if self.object_view:
            (image_B, mask_B), (image_A, mask_A) = self.replay["B"], self.replay["A"]
            return ((image_B, mask_B.to(image_B.device, image_B.dtype)),
                    (image_A, mask_A.to(image_A.device, image_A.dtype)))
        view_B, view_A = self.real_view_masks()
        return (self.real_B, view_B), (self.real_A, view_A)

    def discriminator_view(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """What the vanilla discriminators see of an image seen through ``mask``: all of it, or with
        ``--d_mask given`` / ``objects`` the image times its mask (zeros outside). UAIT masks in its second stage."""
        return image * mask if self.given_mask_view else image

    def fakes_for_discriminators(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The translations ``D_A`` and ``D_B`` judge: ``G_A(x)`` and ``G_B(y)``."""
        return self.fake_B, self.fake_A

    @property
    def discriminators(self) -> list[torch.nn.Module]:
        return [net for name, net in self.networks.items() if name.startswith("D_")]

    def on_epoch_start(self, epoch: int) -> None:
        super().on_epoch_start(epoch)
        if self.is_train and getattr(self.opt, "d_mask_warmup", 0) and self.noted_warmup != self.own_view_warming_up:
            self.noted_warmup = self.own_view_warming_up
            seen = ("as zeros (--d_mask_warmup): no adversarial signal from them" if self.own_view_warming_up
                    else "through the model's own attention")
            self.note(f"from epoch {epoch}, the discriminators see images without a mask {seen}")

    def set_input(self, batch: dict[str, Any]) -> None:
        self.real_A, self.real_B = self.domain_pair(batch)
        # Given masks (all zeros with has_mask False where an image has none, or --mask_fraction dropped it).
        self.given_masks = {side: (batch.get(f"{side}_mask"), batch.get(f"{side}_has_mask")) for side in "AB"}
        # --mask_replay: per side, an image that has a mask and the mask (data/datasets.py).
        self.replay = {side: (batch[f"{side}_replay"].to(self.device), batch[f"{side}_replay_mask"])
                       for side in "AB" if f"{side}_replay" in batch}

    def forward(self) -> None:
        self.out_A: AttentionOutput = self.translate("A", self.real_A)
        self.out_B: AttentionOutput = self.translate("B", self.real_B)
        self.fake_B, self.att_A = self.out_A.image, self.out_A.foreground
        self.fake_A, self.att_B = self.out_B.image, self.out_B.foreground
        # Eq. (3) of AttentionGAN: the other generator translates the fake back.
        self.cycle_A: AttentionOutput = self.translate("B", self.fake_B)
        self.cycle_B: AttentionOutput = self.translate("A", self.fake_A)
        self.rec_A, self.rec_B = self.cycle_A.image, self.cycle_B.image

    # ------------------------------------------------------------------ generator objective
    def generator_terms(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(reconstruction terms, adversarial terms)`` of Eq. (9), each already weighted by its lambda."""
        opt, l1 = self.opt, torch.nn.functional.l1_loss
        recon = {"cycle_A": opt.lambda_A * l1(self.rec_A, self.real_A), "cycle_B": opt.lambda_B * l1(self.rec_B, self.real_B)}
        if opt.lambda_pixel > 0:
            recon["pixel"] = opt.lambda_pixel * (l1(self.fake_B, self.real_A) + l1(self.fake_A, self.real_B))
        if opt.lambda_identity > 0:
            recon["idt_A"] = opt.lambda_identity * opt.lambda_B * l1(self.translate("A", self.real_B).image, self.real_B)
            recon["idt_B"] = opt.lambda_identity * opt.lambda_A * l1(self.translate("B", self.real_A).image, self.real_A)
        judged_B, judged_A = self.fakes_for_discriminators()
        view = self.discriminator_view
        adversarial = {
            "G_A": opt.lambda_gan * self.gan_loss(self.networks["D_A"](view(judged_B, self.view_mask("A", self.att_A))), True),
            "G_B": opt.lambda_gan * self.gan_loss(self.networks["D_B"](view(judged_A, self.view_mask("B", self.att_B))), True),
        }
        if opt.attention_D:
            adversarial["G_AA"] = opt.lambda_gan * self.gan_loss(
                self.networks["D_AA"](mask_image_pair(self.att_A, self.fake_B)), True
            )
            adversarial["G_BA"] = opt.lambda_gan * self.gan_loss(
                self.networks["D_BA"](mask_image_pair(self.att_B, self.fake_A)), True
            )
        if opt.lambda_tv > 0:
            adversarial["tv"] = opt.lambda_tv * (tv_loss(self.att_A) + tv_loss(self.att_B))
        return recon, adversarial

    # ------------------------------------------------------------------ discriminator objective
    def _discriminator_loss(self, name: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return discriminator_loss(self.networks[name], self.gan_loss, real, fake, self.opt)

    def discriminator_losses(self) -> dict[str, torch.Tensor]:
        """Vanilla D on images; attention-guided D on ``[mask, image]`` pairs (Eq. 3 of AGGAN)."""
        judged_B, judged_A = self.fakes_for_discriminators()
        fake_B, mask_A, view_A = self.pool_with_masks(self.fake_B_pool, judged_B, self.att_A, self.view_mask("A", self.att_A))
        fake_A, mask_B, view_B = self.pool_with_masks(self.fake_A_pool, judged_A, self.att_B, self.view_mask("B", self.att_B))
        real_mask_B, real_mask_A = self.real_pair_masks()
        (real_B, real_view_B), (real_A, real_view_A) = self.judged_reals()
        view = self.discriminator_view
        losses = {
            "D_A": self._discriminator_loss("D_A", view(real_B, real_view_B), view(fake_B, view_A)),
            "D_B": self._discriminator_loss("D_B", view(real_A, real_view_A), view(fake_A, view_B)),
        }
        if self.opt.attention_D:
            losses["D_AA"] = self._discriminator_loss(
                "D_AA", mask_image_pair(real_mask_B, self.real_B), mask_image_pair(mask_A, fake_B)
            )
            losses["D_BA"] = self._discriminator_loss(
                "D_BA", mask_image_pair(real_mask_A, self.real_A), mask_image_pair(mask_B, fake_A)
            )
        return losses

    def pool_with_masks(self, pool: Any, fake: torch.Tensor, mask: torch.Tensor, view: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Query ``pool`` with a fake, a mask that goes with it (its attention, SAAGAN's prior) and,
        with ``--d_mask given``, the mask it is judged through (``view``), kept together; returns
        ``(fake, mask, view)`` of what the pool gave back (``view`` is then ``mask`` otherwise)."""
        channels = fake.shape[1]
        pooled = pool.query(torch.cat([fake, mask, view] if self.given_mask_view else [fake, mask], 1))
        kept = pooled[:, channels:channels + 1]
        return pooled[:, :channels], kept, pooled[:, channels + 1:] if self.given_mask_view else kept

    def real_pair_masks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks paired with real B and real A images (``--real_pair_mask``), detached.

        ``fake``: the papers' ``[M_y, y]``, where ``M_y`` is the mask ``G_A`` computed for the
        translation of x. ``own``: the mask the other generator computes on that real image.
        """
        if self.opt.real_pair_mask == "own":
            return self.att_B.detach(), self.att_A.detach()
        return self.att_A.detach(), self.att_B.detach()

    #: Update the discriminators before the generators in each step (SAAGAN's Algorithm 1); the
    #: CycleGAN code base, and the AGGAN/AttentionGAN/UAIT code built on it, update G first.
    discriminator_first: ClassVar[bool] = False

    def generator_step(self) -> dict[str, torch.Tensor]:
        """Minimise Eq. (9) over the generators (discriminators fixed); returns its weighted terms."""
        networks.set_requires_grad(self.discriminators, False)
        recon, adversarial = self.generator_terms()
        w_recon, w_adv = self.curriculum.weights(self.epoch)
        objective = {**{k: w_recon * v for k, v in recon.items()}, **{k: w_adv * v for k, v in adversarial.items()}}
        supervision = self.supervision_terms()  # outside the curriculum: the masks weigh the same throughout
        objective.update(supervision)
        freq = getattr(self.opt, "mask_gradient_freq", 0)
        if freq and self.steps_taken % freq == 0:
            self.mask_gradients = mask_gradient_norms(objective, [self.att_A, self.att_B])
        self.minimize("G", objective)
        return {**recon, **adversarial, **supervision}

    def supervision_terms(self) -> dict[str, torch.Tensor]:
        """``--attention_prior masks``: ``lambda_mask`` times the BCE between each side's foreground
        attention and its given masks, over the images that have one (:func:`mask_bce`); with
        ``--mask_replay``, the same loss (:meth:`replay_loss`) on this step's replayed masked images."""
        if getattr(self.opt, "attention_prior", "none") != "masks":
            return {}
        terms = self.given_mask_terms()
        for side, (image, mask) in self.replay.items():
            terms[f"replay_{side}"] = self.replay_loss(self.translate(side, image).foreground, mask)
        return terms

    def given_mask_terms(self) -> dict[str, torch.Tensor]:
        """The BCE on this batch's images that have a mask, per side."""
        terms = {}
        for side, attention in (("A", self.att_A), ("B", self.att_B)):
            mask, has = self.given_masks.get(side, (None, None))
            if mask is not None and self.opt.lambda_mask:
                terms[f"mask_{side}"] = self.opt.lambda_mask * mask_bce(attention, mask, has)
        return terms

    def replay_loss(self, attention: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The mask loss on replayed images, all of which have a mask."""
        return self.opt.lambda_mask * mask_bce(attention, mask, torch.ones(len(mask), dtype=torch.bool))

    def discriminator_step(self) -> dict[str, torch.Tensor]:
        """Minimise the discriminators' losses on this step's (pooled, detached) translations."""
        networks.set_requires_grad(self.discriminators, True)
        d_losses = self.discriminator_losses()
        self.minimize("D", d_losses)
        return d_losses

    def optimize_parameters(self) -> dict[str, float]:
        self.forward()
        steps = (self.discriminator_step, self.generator_step) if self.discriminator_first else (
            self.generator_step, self.discriminator_step)
        terms: dict[str, torch.Tensor] = {}
        for step in steps:
            terms.update(step())
        self.steps_taken += 1
        losses = {name: float(value.detach()) for name, value in terms.items()}
        losses.update(self.mask_gradients)
        losses["mean_att_A"] = self.monitor.record("A", self.att_A)
        losses["mean_att_B"] = self.monitor.record("B", self.att_B)
        if self.curriculum.enabled:
            losses["r"] = self.curriculum.weights(self.epoch)[0]
        return losses

    def epoch_diagnostics(self) -> list[str]:
        return self.monitor.end_epoch()

    # ------------------------------------------------------------------ pictures
    def current_visuals(self) -> dict[str, Visual]:
        visuals: dict[str, Visual] = {}
        for side, real, fake, rec, out in (
            ("A", self.real_A, self.fake_B, self.rec_A, self.out_A),
            ("B", self.real_B, self.fake_A, self.rec_B, self.out_B),
        ):
            other = "B" if side == "A" else "A"
            visuals[f"real_{side}"] = Visual(real, side, "real")
            visuals[f"fake_{other}"] = Visual(fake, side, "fake")
            visuals[f"rec_{side}"] = Visual(rec, side, "rec")
            visuals[f"attention_{side}"] = Visual(out.foreground, side, "attention")
            visuals.update(self.intermediate_visuals(side, out))
        return visuals
