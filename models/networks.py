"""Building blocks shared by every model: normalisation, initialisation, generators,
discriminators, GAN losses and learning-rate schedules.

The architectures follow Zhu et al. 2017 (CycleGAN, appendix 7.2) and Isola et al. 2017
(pix2pix, appendix 6.1): ``c7s1-k, dk, Rk, uk`` ResNet generators, U-Net generators with
skip connections, and n-layer PatchGAN / 1x1 pixel discriminators. Attention models
build on these pieces instead of re-typing them.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable

import torch
from torch import nn
from torch.optim import lr_scheduler

from util.errors import UserError

NORM_TYPES = ("batch", "instance", "none")
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")
GAN_MODES = ("lsgan", "vanilla", "wgangp")
LR_POLICIES = ("linear", "step", "plateau", "cosine")
GENERATORS = ("resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128", "unet_64", "unet_32")
DISCRIMINATORS = ("basic", "n_layers", "pixel")


# --------------------------------------------------------------------------- norms / init
def norm_layer_factory(norm: str) -> Callable[[int], nn.Module]:
    """Return a constructor ``f(num_channels) -> nn.Module`` for the named normalisation.

    Instance norm has no affine parameters and no running statistics, as in CycleGAN, so
    a generator behaves the same in train and eval mode.
    """
    if norm == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm == "none":
        return lambda num_channels: nn.Identity()
    if norm == "switchable_instance":
        return SwitchableInstanceNorm2d
    raise ValueError(f"--norm must be one of {NORM_TYPES}, got {norm!r}")


class SwitchableInstanceNorm2d(nn.InstanceNorm2d):
    """Instance norm (no parameters) that a model can turn off: UAIT's discriminators drop it
    once they see masked images, whose zero background would dominate the statistics."""

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, affine=False, track_running_stats=False)
        self.enabled = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) if self.enabled else x


def set_instance_norm(net: nn.Module, enabled: bool) -> None:
    """Turn every :class:`SwitchableInstanceNorm2d` of ``net`` on or off."""
    for module in net.modules():
        if isinstance(module, SwitchableInstanceNorm2d):
            module.enabled = enabled


def uses_bias(norm: str) -> bool:
    """Convolutions before a BatchNorm need no bias (the norm has its own shift)."""
    return norm != "batch"


def init_weights(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """Initialise conv/linear weights with the named scheme and norms to N(1, gain)."""
    if init_type not in INIT_TYPES:
        raise ValueError(f"--init_type must be one of {INIT_TYPES}, got {init_type!r}")

    def init_one(module: nn.Module) -> None:
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if init_type == "normal":
                nn.init.normal_(module.weight, 0.0, init_gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(module.weight, gain=init_gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(module.weight, gain=init_gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d) and module.affine:
            nn.init.normal_(module.weight, 1.0, init_gain)
            nn.init.zeros_(module.bias)

    net.apply(init_one)
    return net


# --------------------------------------------------------------------------- generators
class ResnetBlock(nn.Module):
    """``Rk``: two 3x3 convolutions with reflection padding and a skip connection."""

    def __init__(self, channels: int, norm: str = "instance", use_dropout: bool = False) -> None:
        super().__init__()
        norm_layer = norm_layer_factory(norm)
        bias = uses_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(channels),
            nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm_layer(channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def resnet_encoder(
    input_nc: int, ngf: int, norm: str, n_blocks: int, use_dropout: bool, n_downsampling: int = 2,
    first_padding: str = "reflect",
) -> nn.Sequential:
    """``c7s1-ngf, d(2ngf), d(4ngf), n_blocks x R(4ngf)``: the shared front of ResNet generators.

    ``first_padding="zeros"`` pads the first convolution with zeros instead of reflecting, as
    StarGAN's label-conditioned generator does: label maps are constant over the image, so
    with reflection padding the first convolution turns them into a constant per channel,
    which instance normalisation then removes exactly (the label would have no effect);
    zero padding makes their response vary near the borders, and it survives.
    """
    if first_padding not in ("reflect", "zeros"):
        raise ValueError(f"first_padding must be 'reflect' or 'zeros', got {first_padding!r}")
    norm_layer = norm_layer_factory(norm)
    bias = uses_bias(norm)
    layers: list[nn.Module] = [
        nn.ReflectionPad2d(3) if first_padding == "reflect" else nn.ZeroPad2d(3),
        nn.Conv2d(input_nc, ngf, 7, bias=bias),
        norm_layer(ngf),
        nn.ReLU(True),
    ]
    for i in range(n_downsampling):
        mult = 2**i
        layers += [
            nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
            norm_layer(ngf * mult * 2),
            nn.ReLU(True),
        ]
    width = ngf * 2**n_downsampling
    layers += [ResnetBlock(width, norm, use_dropout) for _ in range(n_blocks)]
    return nn.Sequential(*layers)


def resnet_decoder(
    output_nc: int, ngf: int, norm: str, n_upsampling: int = 2, final_activation: nn.Module | None = None
) -> nn.Sequential:
    """``u(2ngf), u(ngf), c7s1-output_nc``; tanh by default, as images live in [-1, 1]."""
    norm_layer = norm_layer_factory(norm)
    bias = uses_bias(norm)
    layers: list[nn.Module] = []
    for i in range(n_upsampling):
        mult = 2 ** (n_upsampling - i)
        layers += [
            nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
            norm_layer(ngf * mult // 2),
            nn.ReLU(True),
        ]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7)]
    layers.append(nn.Tanh() if final_activation is None else final_activation)
    return nn.Sequential(*layers)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator: ``c7s1-64, d128, d256, n x R256, u128, u64, c7s1-3``."""

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        norm: str = "instance",
        use_dropout: bool = False,
        n_blocks: int = 9,
    ) -> None:
        super().__init__()
        self.encoder = resnet_encoder(input_nc, ngf, norm, n_blocks, use_dropout)
        self.decoder = resnet_decoder(output_nc, ngf, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class UnetBlock(nn.Module):
    """One level of the U-Net: down, the inner levels, up, and a skip concatenation."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        norm_layer = norm_layer_factory(norm)
        bias = uses_bias(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        down_conv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        down_act, up_act = nn.LeakyReLU(0.2, True), nn.ReLU(True)
        if outermost:
            up_conv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            layers = [down_conv, submodule, up_act, up_conv, nn.Tanh()]
        elif innermost:
            up_conv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=bias)
            layers = [down_act, down_conv, up_act, up_conv, norm_layer(outer_nc)]
        else:
            up_conv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=bias)
            layers = [down_act, down_conv, norm_layer(inner_nc), submodule, up_act, up_conv, norm_layer(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*[layer for layer in layers if layer is not None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """pix2pix's U-Net: ``num_downs`` halvings, so the input side must be a multiple of 2**num_downs."""

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError("a U-Net needs at least 5 downsamplings (unet_32)")
        block = UnetBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout)
        block = UnetBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm)
        self.min_size = 2**num_downs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.min_size or x.shape[-2] % self.min_size:
            raise UserError(
                f"this U-Net needs image sides that are multiples of {self.min_size}, got "
                f"{tuple(x.shape[-2:])}; use --crop_size {self.min_size} or a smaller unet_N"
            )
        return self.model(x)


def is_resnet(netG: str) -> bool:
    return re.fullmatch(r"resnet_(\d+)blocks", netG) is not None


def generator_size_multiple(netG: str) -> int:
    """Image sides a generator accepts are multiples of this: 4 for ResNet (two halvings), N for U-Net-N."""
    unet = re.fullmatch(r"unet_(\d+)", netG)
    return int(unet.group(1)) if unet else 4


def conv_output_size(size: int, layers: list[tuple[int, int, int]]) -> int:
    """Side after convolutions given as ``(kernel, stride, padding)``."""
    for kernel, stride, padding in layers:
        size = (size + 2 * padding - kernel) // stride + 1
    return size


def patchgan_layers(n_layers: int) -> list[tuple[int, int, int]]:
    """The ``(kernel, stride, padding)`` of :class:`NLayerDiscriminator`'s convolutions."""
    return [(4, 2, 1)] + [(4, 2 if n < n_layers else 1, 1) for n in range(1, n_layers + 1)] + [(4, 1, 1)]


def receptive_field(layers: list[tuple[int, int, int]]) -> int:
    """The image side one output position of ``layers`` sees."""
    field = 1
    for kernel, stride, _ in reversed(layers):
        field = (field - 1) * stride + kernel
    return field


def patchgan_depth(netD: str, n_layers_D: int) -> int:
    """The ``n_layers`` of a PatchGAN-shaped discriminator: 3 (70x70) for ``--netD basic``,
    ``--n_layers_D`` for ``--netD n_layers``. Models whose discriminators have their own blocks
    (SAAGAN, UAIT, AGGAN's pooled D, GuideGAN's PHA) take their depth from here too."""
    if netD == "pixel":
        raise UserError("--netD pixel: this model's discriminator is a PatchGAN; use --netD basic or --netD n_layers "
                        "with --n_layers_D")
    return 3 if netD == "basic" else n_layers_D


def min_input_size(layers: list[tuple[int, int, int]]) -> int:
    """The smallest image side for which ``layers`` still give an output of at least 1x1."""
    size = 1
    while conv_output_size(size, layers) < 1:
        size += 1
    return size


def discriminator_min_size(netD: str, n_layers_D: int) -> int:
    """The smallest image side the ``--netD`` discriminator accepts."""
    return 1 if netD == "pixel" else patchgan_min_size(netD, n_layers_D)


def patchgan_min_size(netD: str, n_layers_D: int) -> int:
    """The smallest image side of a PatchGAN-shaped discriminator (refuses ``--netD pixel``)."""
    return min_input_size(patchgan_layers(patchgan_depth(netD, n_layers_D)))


def resnet_block_count(netG: str) -> int:
    """Residual blocks of a ``resnet_Nblocks`` generator name; other names are an error for
    models whose generators are built on the ResNet encoder (the attention models)."""
    match = re.fullmatch(r"resnet_(\d+)blocks", netG)
    if not match:
        raise UserError(f"this model's generator is ResNet-based: use --netG resnet_9blocks or resnet_6blocks, not {netG!r}")
    return int(match.group(1))


def define_generator(netG: str, input_nc: int, output_nc: int, ngf: int, norm: str, use_dropout: bool) -> nn.Module:
    """Build the generator named by ``--netG`` (``resnet_Nblocks`` or ``unet_S``)."""
    resnet = re.fullmatch(r"resnet_(\d+)blocks", netG)
    if resnet:
        return ResnetGenerator(input_nc, output_nc, ngf, norm, use_dropout, n_blocks=int(resnet.group(1)))
    unet = re.fullmatch(r"unet_(\d+)", netG)
    if unet and int(unet.group(1)) in (32, 64, 128, 256):
        num_downs = int(math.log2(int(unet.group(1))))
        return UnetGenerator(input_nc, output_nc, num_downs, ngf, norm, use_dropout)
    raise ValueError(f"--netG must be one of {GENERATORS}, got {netG!r}")


# --------------------------------------------------------------------------- discriminators
class NLayerDiscriminator(nn.Module):
    """PatchGAN: ``C64-C128-C256-C512`` then a 1-channel conv; receptive field 70x70 at n_layers=3
    (34 at 2, 16 at 1, 142 at 4: :func:`receptive_field` of :func:`patchgan_layers`)."""

    def __init__(
        self,
        input_nc: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        spectral_norm: bool = False,
        norm_first: bool = False,
    ) -> None:
        """``norm_first``: normalise the first layer too (SAAGAN's conv-BN-LeakyReLU blocks);
        ``spectral_norm``: spectral normalisation on every convolution."""
        super().__init__()
        norm_layer = norm_layer_factory(norm)
        bias = uses_bias(norm)
        wrap = nn.utils.spectral_norm if spectral_norm else (lambda m: m)
        first = [norm_layer(ndf)] if norm_first else []
        layers: list[nn.Module] = [
            wrap(nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1, bias=bias or not norm_first)),
            *first,
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                wrap(nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias)),
                norm_layer(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(wrap(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN ("pixelGAN"): judges each pixel's colour statistics independently."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, norm: str = "instance") -> None:
        super().__init__()
        norm_layer = norm_layer_factory(norm)
        bias = uses_bias(norm)
        self.model = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
            norm_layer(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class StarGANDiscriminator(nn.Module):
    """StarGAN's discriminator (Choi et al. 2018): ``repeat`` 4x4 stride-2 convolutions with
    LeakyReLU(0.01) and no normalisation, doubling the width; a 3x3 realness head (a patch map)
    and a domain classification head whose kernel covers the last feature map (one logit per
    domain). Returns ``(realness, domain logits)``."""

    def __init__(self, input_nc: int, ndf: int, n_domains: int, image_size: int, repeat: int = 6) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = input_nc
        for i in range(repeat):
            width = ndf * 2**i
            layers += [nn.Conv2d(channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.01, True)]
            channels = width
        self.trunk = nn.Sequential(*layers)
        kernel = image_size // 2**repeat
        if kernel < 1:
            raise ValueError(f"{repeat} halvings need images of at least {2**repeat} px, got {image_size}")
        self.realness = nn.Conv2d(channels, 1, 3, stride=1, padding=1, bias=False)
        self.domains = nn.Conv2d(channels, n_domains, kernel, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(x)
        return self.realness(features), self.domains(features).flatten(1)


def define_discriminator(netD: str, input_nc: int, ndf: int, n_layers_D: int, norm: str) -> nn.Module:
    """Build the discriminator named by ``--netD``: basic (3-layer PatchGAN), n_layers or pixel."""
    if netD == "pixel":
        return PixelDiscriminator(input_nc, ndf, norm)
    if netD in ("basic", "n_layers"):
        return NLayerDiscriminator(input_nc, ndf, patchgan_depth(netD, n_layers_D), norm)
    raise ValueError(f"--netD must be one of {DISCRIMINATORS}, got {netD!r}")


# --------------------------------------------------------------------------- losses
class GANLoss(nn.Module):
    """The adversarial objective for one discriminator output.

    ``lsgan``: mean squared error to 1/0 (Mao et al.); ``vanilla``: binary cross-entropy on
    logits (Goodfellow et al.); ``wgangp``: -mean for real, +mean for fake (Gulrajani et al.;
    add :func:`gradient_penalty`). ``target_real``/``target_fake`` allow label smoothing.
    """

    def __init__(self, gan_mode: str, target_real: float = 1.0, target_fake: float = 0.0) -> None:
        super().__init__()
        if gan_mode not in GAN_MODES:
            raise ValueError(f"--gan_mode must be one of {GAN_MODES}, got {gan_mode!r}")
        self.gan_mode = gan_mode
        self.register_buffer("real_label", torch.tensor(target_real))
        self.register_buffer("fake_label", torch.tensor(target_fake))

    def forward(
        self, prediction: torch.Tensor, target_is_real: bool, target: float | None = None, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The loss averaged over the prediction map; ``weight`` (resized to the map, e.g. SAAGAN's
        Eq. 8 mask) weights each position before averaging."""
        if weight is not None:
            weight = resize_to(weight, prediction)
        if self.gan_mode == "wgangp":
            value = prediction if weight is None else prediction * weight
            return -value.mean() if target_is_real else value.mean()
        if target is not None:
            label = torch.full_like(prediction, target)
        else:
            label = (self.real_label if target_is_real else self.fake_label).expand_as(prediction)
        if self.gan_mode == "lsgan":
            squared = (prediction - label) ** 2
            return (squared if weight is None else squared * weight).mean()
        return nn.functional.binary_cross_entropy_with_logits(prediction, label, weight=weight)


def resize_to(weight: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
    """A ``B x 1 x H x W`` weight map interpolated (bilinear) to a discriminator's output size."""
    if weight.shape[-2:] != prediction.shape[-2:]:
        weight = nn.functional.interpolate(weight, size=prediction.shape[-2:], mode="bilinear", align_corners=False)
    return weight.expand_as(prediction)


def gradient_penalty(netD: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0) -> torch.Tensor:
    """WGAN-GP penalty ``weight * E[(||grad D(x_hat)||_2 - 1)^2]`` on random interpolates."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = netD(mixed)
    grads = torch.autograd.grad(out, mixed, torch.ones_like(out), create_graph=True, retain_graph=True)[0]
    return weight * ((grads.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def set_requires_grad(nets: list[nn.Module] | nn.Module, requires_grad: bool) -> None:
    """Freeze or unfreeze networks, e.g. the discriminators while the generators step."""
    for net in nets if isinstance(nets, list) else [nets]:
        for param in net.parameters():
            param.requires_grad = requires_grad


# --------------------------------------------------------------------------- schedules
def make_scheduler(
    optimizer: torch.optim.Optimizer, policy: str, *, epoch_count: int, n_epochs: int, n_epochs_decay: int, lr_decay_iters: int
) -> lr_scheduler.LRScheduler | lr_scheduler.ReduceLROnPlateau:
    """The ``--lr_policy`` schedule, stepped once per epoch.

    ``linear`` keeps the rate for ``n_epochs`` and decays it linearly to zero over the
    next ``n_epochs_decay`` (CycleGAN); ``step`` multiplies by 0.1 every
    ``lr_decay_iters`` epochs; ``plateau`` follows a metric; ``cosine`` anneals to 0 over
    ``n_epochs``.
    """
    if policy == "linear":

        def linear_factor(epoch: int) -> float:
            return 1.0 - max(0, epoch + epoch_count - n_epochs) / float(n_epochs_decay + 1)

        return lr_scheduler.LambdaLR(optimizer, lr_lambda=linear_factor)
    if policy == "step":
        return lr_scheduler.StepLR(optimizer, step_size=lr_decay_iters, gamma=0.1)
    if policy == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.2, threshold=0.01, patience=5)
    if policy == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_epochs, eta_min=0)
    raise ValueError(f"--lr_policy must be one of {LR_POLICIES}, got {policy!r}")
