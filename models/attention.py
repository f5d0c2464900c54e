"""Pieces shared by the attention models (AGGAN, AttentionGAN, and those built on them).

- Attention fusion, Eq. (1) of AGGAN / AttentionGAN scheme I:
  ``G(x) = C * M + x * (1 - M)`` (:func:`fuse_single`);
  Eq. (2)/(3) of AttentionGAN scheme II: ``G(x) = sum_i C_i * A_i + x * A_b`` with the n
  masks ``[A_1..A_{n-1}, A_b]`` normalised by a channel softmax (:func:`fuse_multi`).
- Total-variation "attention loss" on a mask, Eq. (6) of AGGAN / Eq. (7) of AttentionGAN, and
  SAAGAN's smoothness loss Eq. (7) as its per-pixel mean (:func:`tv_loss`).
- The attention-guided discriminator's input, the pair ``[M, image]`` of Eq. (3) of AGGAN /
  Eq. (6) of AttentionGAN (:func:`mask_image_pair`).
- The supervision of the foreground attention by given masks, for any model with a blending
  mask (``--attention_prior masks``): a BCE over the images that have a mask (:func:`mask_bce`).
- The loss curriculum of Eq. (9): ``(cycle + pixel) * r + (gan + tv) * (1 - r)`` with
  ``r = 0.01`` for the first 10 epochs, then 0.5 (:class:`Curriculum`).
- A monitor that warns when attention collapses to all-background or all-foreground
  (:class:`AttentionMonitor`).
- The two generator families (:class:`AttentionGeneratorI`, :class:`AttentionGeneratorII`),
  UAIT's separate attention network (:class:`UAITAttentionNetwork`), SAAGAN's generator with
  an attention branch (:class:`BranchedAttentionGenerator`) and the pooled-score
  discriminator of the AGGAN paper (:class:`PooledDiscriminator`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models import networks


# --------------------------------------------------------------------------- equations
def fuse_single(content: torch.Tensor, mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Eq. (1): ``C * M + x * (1 - M)``; ``mask`` is ``B x 1 x H x W``, broadcast over channels."""
    return content * mask + image * (1 - mask)


def fuse_multi(contents: torch.Tensor, masks: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Eq. (2): ``sum_i C_i * A_i + x * A_b``.

    ``contents``: ``B x (n-1) x C x H x W``; ``masks``: ``B x n x H x W`` summing to 1 over
    dim 1, the last one being the background mask ``A_b`` (the order of the authors' code).
    """
    foreground = masks[:, :-1].unsqueeze(2)
    background = masks[:, -1:]
    return (contents * foreground).sum(1) + image * background


def tv_loss(mask: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """Eq. (6)/(7): sum over pixels of ``|M(w+1,h) - M(w,h)| + |M(w,h+1) - M(w,h)|``.

    ``sum``: summed over the image, as in AGGAN/AttentionGAN (hence their small weight 1e-6),
    averaged over the batch so the weight does not depend on the batch size. ``mean``: the mean
    absolute difference per direction, SAAGAN's ``||grad_u||_1 + ||grad_v||_1`` (weight 5).
    """
    horizontal = (mask[..., :, 1:] - mask[..., :, :-1]).abs().flatten(1)
    vertical = (mask[..., 1:, :] - mask[..., :-1, :]).abs().flatten(1)
    if reduction == "mean":
        return horizontal.mean() + vertical.mean()
    return (horizontal.sum(1) + vertical.sum(1)).mean()


def mask_bce(attention: torch.Tensor, masks: torch.Tensor, has_mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy between foreground attention and given masks (``B x 1 x H x W``), the
    mean over the pixels of the images that have a mask (``has_mask``, ``B`` booleans); images
    without one add nothing (a zero that keeps the graph when no image has one). In fp32."""
    has = has_mask.to(attention.device).bool().view(-1)
    if not bool(has.any()):
        return attention.sum() * 0.0
    prediction = attention[has].float().clamp(1e-6, 1 - 1e-6)
    target = masks[has].to(prediction.device, torch.float32)
    return -(target * prediction.log() + (1 - target) * (1 - prediction).log()).mean()


def mask_image_pair(mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """The attention-guided discriminator's input ``[M, image]``: ``B x (1 + C) x H x W``."""
    return torch.cat([mask, image], dim=1)


@dataclass(frozen=True)
class Curriculum:
    """Eq. (9): weight ``r`` on reconstruction terms (cycle, pixel, identity) and ``1 - r`` on
    adversarial and TV terms; ``r = early`` for epochs ``1..epochs``, then ``late``.

    ``enabled=False`` means plain sums (weight 1 on every term), the CycleGAN recipe.
    """

    enabled: bool = True
    epochs: int = 10
    early: float = 0.01
    late: float = 0.5

    def r(self, epoch: int) -> float:
        return self.early if epoch <= self.epochs else self.late

    def weights(self, epoch: int) -> tuple[float, float]:
        """``(reconstruction weight, adversarial weight)`` for ``epoch`` (1-based)."""
        if not self.enabled:
            return 1.0, 1.0
        r = self.r(epoch)
        return r, 1.0 - r


class AttentionMonitor:
    """Mean foreground attention per batch, and a warning when an epoch's stays near 0 or 1.

    Collapsed attention is the failure users report most: the mask saturates to 1 (the
    model becomes a plain CycleGAN) or to 0 (it copies its input).
    """

    def __init__(self, low: float = 0.02, high: float = 0.98) -> None:
        self.low, self.high = low, high
        self.values: dict[str, list[float]] = {}

    def record(self, name: str, foreground: torch.Tensor) -> float:
        value = float(foreground.detach().mean())
        self.values.setdefault(name, []).append(value)
        return value

    def end_epoch(self) -> list[str]:
        """Warnings for the epoch that ended; resets the record."""
        messages = []
        for name, values in self.values.items():
            if values and max(values) < self.low:
                messages.append(
                    f"{name} attention stayed near 0 all epoch (max batch mean {max(values):.4f}): "
                    f"the generator copies its input; consider a lower --lambda_pixel or --lambda_identity"
                )
            elif values and min(values) > self.high:
                messages.append(
                    f"{name} attention stayed near 1 all epoch (min batch mean {min(values):.4f}): "
                    f"the whole image is repainted; consider --lambda_tv or a higher --lambda_pixel"
                )
        self.values = {}
        return messages


# --------------------------------------------------------------------------- networks
@dataclass
class AttentionOutput:
    """What an attention generator returns.

    ``image``: the fused translation; ``foreground``: ``B x 1 x H x W`` total foreground
    attention (1 - background); ``masks``: ``B x k x H x W`` the individual masks (k = 1 for
    scheme I; n for scheme II, background last); ``contents``: ``B x m x C x H x W``.
    """

    image: torch.Tensor
    foreground: torch.Tensor
    masks: torch.Tensor
    contents: torch.Tensor


class AttentionGeneratorI(nn.Module):
    """Scheme I / AGGAN: one ResNet generator ``c7s1-64, d128, d256, 9 x R256, u128, u64, c7s1-4``.

    Output channel 0 -> sigmoid attention mask ``M``; channels 1..3 -> tanh content ``C``
    (the paper's; the released AGGAN code omits the tanh); fused with Eq. (1).
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        norm: str = "batch",
        use_dropout: bool = False,
        n_blocks: int = 9,
        condition_nc: int = 0,
    ) -> None:
        super().__init__()
        self.encoder = networks.resnet_encoder(input_nc + condition_nc, ngf, norm, n_blocks, use_dropout,
                                               first_padding="zeros" if condition_nc else "reflect")
        self.decoder = networks.resnet_decoder(1 + output_nc, ngf, norm, final_activation=nn.Identity())

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> AttentionOutput:
        """``condition`` (``B x condition_nc x H x W``, e.g. target-domain label maps) is joined to the
        encoder's input; the fusion uses ``x`` alone."""
        out = self.decoder(self.encoder(x if condition is None else torch.cat([x, condition], 1)))
        mask = torch.sigmoid(out[:, :1])
        content = torch.tanh(out[:, 1:])
        return AttentionOutput(fuse_single(content, mask, x), mask, mask, content.unsqueeze(1))


class AttentionGeneratorII(nn.Module):
    """Scheme II: shared encoder ``c7s1-64, d128, d256, 9 x R256``; a content decoder
    ``u128, u64, c7s1-3(n-1)`` + tanh giving n-1 content images, and an attention decoder
    ``u128, u64, c1s1-n`` + channel softmax giving n-1 foreground masks and the background
    mask (last). Fused with Eq. (2). The layout matches the authors' released generator,
    so its weights convert one-to-one (see ``models/attentiongan_model.py``).
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        norm: str = "instance",
        use_dropout: bool = False,
        n_blocks: int = 9,
        n_masks: int = 10,
        condition_nc: int = 0,
    ) -> None:
        super().__init__()
        if n_masks < 2:
            raise ValueError("scheme II needs n >= 2 attention masks (n-1 foreground + 1 background)")
        self.n_masks, self.output_nc = n_masks, output_nc
        self.encoder = networks.resnet_encoder(input_nc + condition_nc, ngf, norm, n_blocks, use_dropout,
                                               first_padding="zeros" if condition_nc else "reflect")
        self.content_decoder = networks.resnet_decoder(output_nc * (n_masks - 1), ngf, norm)
        attention = networks.resnet_decoder(n_masks, ngf, norm, final_activation=nn.Identity())
        # The released model ends its attention branch with a 1x1 conv, not a padded 7x7 one.
        self.attention_decoder = nn.Sequential(*list(attention.children())[:-3], nn.Conv2d(ngf, n_masks, 1))

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> AttentionOutput:
        """As :meth:`AttentionGeneratorI.forward`: ``condition`` joins the encoder's input only."""
        features = self.encoder(x if condition is None else torch.cat([x, condition], 1))
        b, _, h, w = x.shape
        contents = self.content_decoder(features).view(b, self.n_masks - 1, self.output_nc, h, w)
        masks = torch.softmax(self.attention_decoder(features), dim=1)
        return AttentionOutput(fuse_multi(contents, masks, x), 1 - masks[:, -1:], masks, contents)


class UAITAttentionNetwork(nn.Module):
    """UAIT's attention network (Appendix A): ``c7s2-32-R, c3s2-64-R, r64, up2, c3s1-64-R, up2,
    c3s1-32-R, c7s1-1-S``, instance norm on every layer but the last, nearest up-sampling.

    The paper's table prints the first convolution with stride 1, which with one stride-2
    convolution and two up-samplings would return twice the input size; the authors' code uses
    stride 2 there, the consistent reading taken here: the output has the input's size for any
    side divisible by 4.

    ``head`` chooses the three convolutions after the up-samplings: ``paper`` is the printed
    3x3, 3x3, 7x7; ``authors`` is what the authors' TensorFlow code runs, where the kernel size
    is passed in the wrong argument so all three are 1x1 (the mask is then a quarter-resolution
    map, blown up by nearest up-sampling and per-pixel layers). Both keep the same layer
    indices, so a checkpoint's keys do not depend on the head (only the kernel shapes do).
    """

    HEADS = ("paper", "authors")

    def __init__(self, input_nc: int = 3, ngf: int = 32, head: str = "authors") -> None:
        super().__init__()
        if head not in self.HEADS:
            raise ValueError(f"head must be one of {self.HEADS}, got {head!r}")
        norm = networks.norm_layer_factory("instance")
        after_upsampling = {"paper": (3, 3, 7), "authors": (1, 1, 1)}[head]

        def conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
            return [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(c_in, c_out, kernel, stride), norm(c_out), nn.ReLU(True)]

        up = [nn.Upsample(scale_factor=2, mode="nearest")]
        k1, k2, k3 = after_upsampling
        self.model = nn.Sequential(
            *conv(input_nc, ngf, 7, 2),
            *conv(ngf, ngf * 2, 3, 2),
            networks.ResnetBlock(ngf * 2, "instance"),
            *up,
            *conv(ngf * 2, ngf * 2, k1),
            *up,
            *conv(ngf * 2, ngf, k2),
            nn.ReflectionPad2d(k3 // 2),
            nn.Conv2d(ngf, 1, k3),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class BranchedAttentionGenerator(nn.Module):
    """SAAGAN's generator (Sec. 3.5): CycleGAN's ResNet generator whose attention branch leaves
    after the ``branch_after``-th residual block (4): the trunk ``c7s1-64, d128, d256, 4 x R256``
    feeds the translation branch ``G_T`` (the remaining residual blocks, ``u128, u64, c7s1-3``,
    tanh) and the attention branch ``G_A`` (2 residual blocks and two stride-2 transposed
    convolutions, the last to one channel, sigmoid). Fused by Eq. (2) of SAAGAN,
    ``G(x) = G_A(x) * G_T(x) + (1 - G_A(x)) * x`` (:func:`fuse_single`).
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        norm: str = "instance",
        use_dropout: bool = False,
        n_blocks: int = 9,
        branch_after: int = 4,
        attention_blocks: int = 2,
    ) -> None:
        super().__init__()
        if not 0 <= branch_after <= n_blocks:
            raise ValueError(f"the attention branch must leave after one of the {n_blocks} residual blocks")
        width = ngf * 4
        norm_layer = networks.norm_layer_factory(norm)
        self.trunk = networks.resnet_encoder(input_nc, ngf, norm, branch_after, use_dropout)
        rest = [networks.ResnetBlock(width, norm, use_dropout) for _ in range(n_blocks - branch_after)]
        self.translation = nn.Sequential(*rest, networks.resnet_decoder(output_nc, ngf, norm))
        self.attention = nn.Sequential(
            *[networks.ResnetBlock(width, norm, use_dropout) for _ in range(attention_blocks)],
            nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1),
            norm_layer(width // 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(width // 2, 1, 3, stride=2, padding=1, output_padding=1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> AttentionOutput:
        features = self.trunk(x)
        content, mask = self.translation(features), self.attention(features)
        return AttentionOutput(fuse_single(content, mask, x), mask, mask, content.unsqueeze(1))


def pooled_layers(depth: int = 3) -> list[tuple[int, int, int]]:
    """The ``(kernel, stride, padding)`` of :class:`PooledDiscriminator`'s convolutions before the
    pooling: ``depth + 1`` halvings, then a stride-1 conv (94 px seen per position at the paper's
    depth 3, 46 at 2: the same share of the image side at 128 px as 94 at 256)."""
    return [(4, 2, 1)] * (depth + 1) + [(4, 1, 1)]


class PooledDiscriminator(nn.Module):
    """The AGGAN paper's D (Sec. III-D): ``C64-C128-C256-C512`` (stride 2; "the BatchNorm is used for
    the first C64", ``first_norm``), ``C512`` (stride 1, no norm), then adaptive average pooling and
    a 1x1 conv: one score per image. ``depth`` (the PatchGAN's ``n_layers``, 3 in the paper) sets the
    number of halvings, ``depth + 1``, and so what each pooled position sees."""

    def __init__(self, input_nc: int, ndf: int = 64, norm: str = "instance", first_norm: bool = True,
                 depth: int = 3) -> None:
        super().__init__()
        norm_layer = networks.norm_layer_factory(norm)
        layers: list[nn.Module] = []
        channels = input_nc
        for i in range(depth + 1):
            width = ndf * min(2**i, 8)
            layers += [
                nn.Conv2d(channels, width, 4, stride=2, padding=1),
                norm_layer(width) if i or first_norm else nn.Identity(),
                nn.LeakyReLU(0.2, True),
            ]
            channels = width
        layers += [
            nn.Conv2d(channels, ndf * 8, 4, stride=1, padding=1),
            nn.LeakyReLU(0.2, True),
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(ndf * 8, 1, 1),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def define_attention_discriminator(head: str, input_nc: int, opt) -> nn.Module:
    """``pooled`` (AGGAN paper) or ``patch`` (``--netD`` PatchGAN) discriminator."""
    if head == "pooled":
        return PooledDiscriminator(input_nc, opt.ndf, opt.norm, first_norm=getattr(opt, "d_first_norm", True),
                                   depth=networks.patchgan_depth(opt.netD, opt.n_layers_D))
    return networks.define_discriminator(opt.netD, input_nc, opt.ndf, opt.n_layers_D, opt.norm)
