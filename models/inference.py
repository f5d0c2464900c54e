"""One-direction translators: plain modules that map a batch of images to a tuple of named outputs.

``BaseModel.inference_module(direction, target_domain)`` returns one of these (with the names of
its outputs), built from the model's own generator networks. ``translate.py`` runs it on a
folder; ``scripts/export_generator.py`` exports it to TorchScript and ONNX, where the attention
outputs become named outputs. Each returns a tuple (no dataclasses) so tracers can follow it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.attention import fuse_single
from models.guidance import constant_map, join


class Translator(nn.Module):
    """A generator that returns one image: outputs ``("output",)``."""

    output_names: tuple[str, ...] = ("output",)

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.generator(image),)


class AttentionTranslator(nn.Module):
    """An attention generator (returning ``AttentionOutput``): outputs ``("output", "attention")``,
    the translation and its foreground attention."""

    output_names: tuple[str, ...] = ("output", "attention")

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.generator(image)
        return out.image, out.foreground


class SeparateAttentionTranslator(nn.Module):
    """UAIT's generator with its own attention network (``None``: all ones), Eq. (1)."""

    output_names: tuple[str, ...] = ("output", "attention")

    def __init__(self, generator: nn.Module, attention: nn.Module | None) -> None:
        super().__init__()
        self.generator, self.attention = generator, attention

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        content = self.generator(image)
        mask = self.attention(image) if self.attention is not None else torch.ones_like(image[:, :1])
        return fuse_single(content, mask, image), mask


class GuidedTranslator(nn.Module):
    """GuideGAN's generator at test time: the input joined with a constant map, all ones (Sec. 4)
    or ``level`` (``--test_map mean``)."""

    output_names: tuple[str, ...] = ("output",)

    def __init__(self, generator: nn.Module, transfer: nn.Module, join: str, level: float = 1.0) -> None:
        super().__init__()
        self.generator, self.transfer, self.join, self.level = generator, transfer, join, level

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        attention = self.transfer(constant_map(image, self.level), image.shape[-2:])
        return (self.generator(join(image, attention, self.join)),)


class ConditionedTranslator(nn.Module):
    """The multi-domain generator towards one fixed domain: outputs ``("output", "attention")``."""

    output_names: tuple[str, ...] = ("output", "attention")

    def __init__(self, generator: nn.Module, n_domains: int, target: int) -> None:
        super().__init__()
        self.generator = generator
        self.register_buffer("label", F.one_hot(torch.tensor(target), n_domains).float().view(1, n_domains, 1, 1))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        condition = (self.label * torch.ones_like(image[:, :1])).to(image.dtype)
        out = self.generator(image, condition)
        return out.image, out.foreground
