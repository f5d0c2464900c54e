"""AttentionGAN: Unpaired Image-to-Image Translation using Attention-Guided GANs
(Tang, Liu, Xu, Torr, Sebe; TNNLS; papers/attentiongan_tang.txt).

- Scheme II (default, Sec. 3.1, Fig. 3): a shared encoder and two decoders. The content
  decoder gives n-1 content images ``C_i`` (tanh), the attention decoder n masks through a
  channel softmax: n-1 foreground masks ``A_i`` and the background mask ``A_b`` (last).
  Eq. (2): ``G_y = sum_i C_i * A_i + x * A_b``; Eq. (3): the cycle ``R_x`` fuses the other
  generator's masks with ``G_y``. ``--n_attention`` sets n (10 in the paper).
- Scheme I (``--scheme I``, Fig. 2): one mask and one content image from one network, Eq. (1)
  (the generator of AGGAN).
- Attention-guided discriminators on ``[A, image]`` (Sec. 3.2, Eq. 6; ``--attention_D``): the
  mask is the foreground attention ``1 - A_b``. TV loss on that map (Eq. 7, ``--lambda_tv``),
  pixel loss (Eq. 8, ``--lambda_pixel``) and the curriculum of Eq. (9) (``--curriculum``).
  The authors' released code has none of these for scheme II; here they are options.

Recipes (Sec. 4.1):
- natural images (default): CycleGAN's losses, LSGAN, cycle 10, identity 0.5, no
  attention-guided D, no pixel/TV terms, no curriculum. The released horse2zebra recipe adds
  ``--batch_size 4 --n_epochs 60 --n_epochs_decay 0`` (load 286 / crop 256).
- faces: ``--attention_D --lambda_gan 0.5 --lambda_pixel 1 --lambda_tv 1e-6 --curriculum
  --lambda_identity 0`` (cycle 10; r = 0.01 for 10 epochs, then 0.5).

Published weights: a generator saved by the authors' code (``latest_net_G_A.pth``, keys
``conv1.. deconv3_attention``) maps one-to-one onto :class:`AttentionGeneratorII` with
:func:`convert_released_generator`; ``scripts/convert_attentiongan_weights.py`` turns a
pair of them into a checkpoint that ``test.py --model attentiongan`` loads.
The paper's multi-domain (StarGAN-style) extension is not implemented.
"""

from __future__ import annotations

import argparse
import re

import torch

from models import networks
from models.attention import AttentionGeneratorII, AttentionOutput
from models.attention_cycle import AttentionCycleModel, add_attention_options
from models.base_model import Visual
from models.registry import register_model


@register_model("attentiongan")
class AttentionGANModel(AttentionCycleModel):
    architecture_options = AttentionCycleModel.architecture_options + ("scheme", "n_attention")

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(no_dropout=True, dataset_mode="unaligned")
        parser.add_argument("--scheme", type=str, default="II", choices=("I", "II"), help="attention-guided generation scheme")
        parser.add_argument(
            "--n_attention",
            type=int,
            default=10,
            help="scheme II: n attention masks (n-1 foreground + background) and n-1 content images",
        )
        if is_train:
            add_attention_options(
                parser, lambda_gan=1.0, lambda_pixel=0.0, lambda_tv=0.0, curriculum=False, attention_D=False, d_head="patch"
            )
        return parser

    @classmethod
    def validate_options(cls, opt: argparse.Namespace) -> list[str]:
        problems = super().validate_options(opt)
        if opt.scheme == "II" and opt.n_attention < 2:
            problems.append(f"--n_attention {opt.n_attention}: scheme II needs at least 2 masks (n-1 foreground + background)")
        return problems

    def build_generator(self, input_nc: int, output_nc: int) -> torch.nn.Module:
        opt = self.opt
        if opt.scheme == "I":
            return super().build_generator(input_nc, output_nc)
        n_blocks = networks.resnet_block_count(opt.netG)
        return AttentionGeneratorII(input_nc, output_nc, opt.ngf, opt.norm, not opt.no_dropout, n_blocks, n_masks=opt.n_attention)

    def intermediate_visuals(self, side: str, out: AttentionOutput) -> dict[str, Visual]:
        if self.opt.scheme == "I":
            return super().intermediate_visuals(side, out)
        n = out.masks.shape[1]
        visuals = {f"background_{side}": Visual(out.masks[:, -1:], side, "mask")}
        for i in range(n - 1):
            visuals[f"mask{i + 1}_{side}"] = Visual(out.masks[:, i : i + 1], side, "mask")
        for i in range(n - 1):
            visuals[f"content{i + 1}_{side}"] = Visual(out.contents[:, i], side, "content")
        return visuals


# ------------------------------------------------------------------ the authors' released weights
_RELEASED_ENCODER = {"conv1": "encoder.1", "conv2": "encoder.4", "conv3": "encoder.7"}
_RELEASED_DECODERS = {
    "deconv1_content": "content_decoder.0",
    "deconv2_content": "content_decoder.3",
    "deconv3_content": "content_decoder.7",
    "deconv1_attention": "attention_decoder.0",
    "deconv2_attention": "attention_decoder.3",
    "deconv3_attention": "attention_decoder.6",
}
_RELEASED_BLOCK = re.compile(r"resnet_blocks\.(\d+)\.conv([12])\.(weight|bias)$")


def convert_released_generator(released: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the authors' scheme-II generator state_dict onto :class:`AttentionGeneratorII`'s.

    Released layout (ngf 64, instance norm without parameters): ``conv1`` (7x7) ``conv2``,
    ``conv3`` (3x3 stride 2), ``resnet_blocks.N.conv1/conv2`` (3x3), ``deconv1/2_content``
    and ``deconv1/2_attention`` (3x3 transposed, stride 2), ``deconv3_content`` (7x7 to 27
    channels) and ``deconv3_attention`` (1x1 to 10 channels). Here: ``encoder.{1,4,7}``,
    ``encoder.{10+N}.body.{1,5}``, ``content_decoder.{0,3,7}``, ``attention_decoder.{0,3,6}``.
    Raises ``KeyError`` naming any key it does not know.
    """
    converted = {}
    for key, value in released.items():
        prefix, _, param = key.rpartition(".")
        block = _RELEASED_BLOCK.match(key)
        if block:
            index, conv, param = int(block.group(1)), block.group(2), block.group(3)
            converted[f"encoder.{10 + index}.body.{1 if conv == '1' else 5}.{param}"] = value
        elif prefix in _RELEASED_ENCODER:
            converted[f"{_RELEASED_ENCODER[prefix]}.{param}"] = value
        elif prefix in _RELEASED_DECODERS:
            converted[f"{_RELEASED_DECODERS[prefix]}.{param}"] = value
        elif "norm" in prefix and value.numel() == 0:
            continue
        else:
            raise KeyError(f"unexpected key {key!r} in a released AttentionGAN generator")
    return converted


def released_generator_options(released: dict[str, torch.Tensor]) -> dict[str, int]:
    """``ngf``, ``n_blocks`` and ``n_attention`` read off a released state_dict's shapes."""
    n_blocks = len({m.group(1) for key in released if (m := _RELEASED_BLOCK.match(key))})
    return {
        "ngf": int(released["conv1.weight"].shape[0]),
        "n_blocks": n_blocks,
        "n_attention": int(released["deconv3_attention.weight"].shape[0]),
        "input_nc": int(released["conv1.weight"].shape[1]),
    }
