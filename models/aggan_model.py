"""AGGAN: Attention-Guided GAN for unsupervised image-to-image translation
(Tang, Xu, Sebe, Yan; IJCNN 2019; papers/aggan_ijcnn2019.txt). "AttentionGAN scheme I".

- Generator (Sec. III-A / D): one ResNet generator ``c7s1-64, d128, d256, 6 x R256, u128, u64,
  c7s1-4`` with BatchNorm (``--netG resnet_6blocks``, the default); channel 0 -> sigmoid mask ``M``, channels 1..3 -> tanh content
  ``R``, fused by Eq. (1) ``G_y = R_y * M_y + x * (1 - M_y)``.
- Discriminators (Sec. III-B): a vanilla D per domain and an attention-guided D per domain on
  ``[M, image]`` pairs, Eq. (3); the paper's head ``C64-C128-C256-C512-C512`` with BatchNorm from
  the first C64 on (``--no_d_first_norm`` drops it there, as the CycleGAN PatchGAN does), adaptive
  average pooling and a conv (one score per image) by default, ``--d_head patch`` for a PatchGAN.
- Objective, Eq. (9): ``[10 L_cycle + 1 L_pixel] r + [0.5 (L_GAN + L_AGAN) + 1e-6 L_tv] (1 - r)``
  with ``r = 0.01`` for 10 epochs, then 0.5; LSGAN; D loss halved; image pool of 50.
- Optimiser (Sec. IV-A): Adam lr 1e-4, betas (0.5, 0.999), batch 1, 200 epochs with linear
  decay from epoch 100; images resized to 256 with random flips (no crop).

Ambiguity (Eq. 3): the real image ``y`` is paired with ``M_y``, the mask ``G_A`` computed for
the translation of ``x`` (``--real_pair_mask fake``, default); ``--real_pair_mask own`` pairs
it with the mask ``G_B`` computes on ``y`` itself. The released AGGAN code has no tanh on
the content and a discriminator that ignores the mask; this implementation follows the paper.

Measured (docs/benchmark.md, "Which part shuts AGGAN's masks"): the masks stay open during the
curriculum and shut once r becomes 0.5. This happens without the pixel loss too, and faster
with ``--real_pair_mask own`` or without the attention-guided discriminators. A shut mask gets
no gradient back through the sigmoid, so the model then copies its input.
"""

from __future__ import annotations

import argparse

from models.attention_cycle import AttentionCycleModel, add_attention_options
from models.registry import register_model


@register_model("aggan")
class AGGANModel(AttentionCycleModel):
    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(norm="batch", no_dropout=True, dataset_mode="unaligned", load_size=256, crop_size=256)
        if is_train:
            add_attention_options(
                parser, lambda_gan=0.5, lambda_pixel=1.0, lambda_tv=1e-6, curriculum=True, attention_D=True, d_head="pooled"
            )
            # After the options exist: argparse lets explicit add_argument defaults win over earlier set_defaults.
            parser.set_defaults(lr=0.0001, n_epochs=100, n_epochs_decay=100, lambda_identity=0.0)
        # Sec. III-D: six residual blocks (resnet_9blocks stays available).
        parser.set_defaults(netG="resnet_6blocks")
        return parser
