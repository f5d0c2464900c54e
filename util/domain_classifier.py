"""A small domain classifier (A vs B) that the project trains itself, for offline evaluation.

Inception-based FID/KID need a downloaded weights file; this classifier needs none, so runs
can be compared on any machine. It gives two measures (see ``scripts/evaluate.py``):

* the fraction of translated images it assigns to the target domain (the "classification
  accuracy" style measure of the translation literature, with our own classifier);
* a KID (Binkowski et al. 2018, the estimator of :mod:`util.metrics`) on its penultimate
  features. That number is *not* Inception KID: it is comparable only between runs evaluated
  with the same classifier file, and is always reported under the name
  "classifier-feature KID".

Network: ``n_layers`` blocks of 4x4 stride-2 convolution, batch norm (none on the first
block, as in the PatchGAN of Isola et al. 2017) and LeakyReLU(0.2), doubling the width up
to 8x, then global average pooling (the penultimate features) and one linear unit whose
logit is ``log p(B) / p(A)``. At the default 64 px input the last feature map is 4x4.

Checkpoint (written with :func:`util.checkpoint.atomic_save`)::

    {"format_version": 1, "kind": "domain_classifier", "architecture": {...},
     "state": state_dict, "options": {...}, "accuracy": {...}, "domains": {"A": ..., "B": ...}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from util.checkpoint import FORMAT_VERSION
from util.errors import UserError

KIND = "domain_classifier"


class DomainClassifier(nn.Module):
    """conv-(BN)-LeakyReLU x n_layers -> global average pool -> linear (one logit: B vs A)."""

    def __init__(self, input_size: int = 64, width: int = 32, n_layers: int = 4) -> None:
        super().__init__()
        if input_size < 2**n_layers:
            raise ValueError(f"input_size {input_size} is too small for {n_layers} stride-2 layers")
        self.input_size, self.width, self.n_layers = input_size, width, n_layers
        layers: list[nn.Module] = []
        channels_in = 3
        for i in range(n_layers):
            channels_out = width * min(2**i, 8)
            layers.append(nn.Conv2d(channels_in, channels_out, 4, stride=2, padding=1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(channels_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            channels_in = channels_out
        self.trunk = nn.Sequential(*layers)
        self.feature_dim = channels_in
        self.head = nn.Linear(channels_in, 1)

    def architecture(self) -> dict[str, int]:
        return {"input_size": self.input_size, "width": self.width, "n_layers": self.n_layers}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features: the globally pooled last feature map, ``B x feature_dim``."""
        return self.trunk(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logit of domain B (``B``-sized vector); inputs ``B x 3 x S x S`` in [-1, 1]."""
        return self.head(self.features(x)).squeeze(1)


def prepare_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """``uint8`` B x 3 x H x W -> float in [-1, 1] at ``size x size`` (antialiased bilinear)."""
    x = images.float() / 127.5 - 1.0
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def predict_proba(model: DomainClassifier, images: torch.Tensor) -> torch.Tensor:
    """Probability of domain B for ``uint8`` images ``B x 3 x H x W`` (any size); on the CPU."""
    model.eval()
    with torch.no_grad():
        logits = model(prepare_images(images.to(_device_of(model)), model.input_size))
    return torch.sigmoid(logits).float().cpu()


def penultimate_features(model: DomainClassifier, images: torch.Tensor) -> torch.Tensor:
    """Penultimate features of ``uint8`` images ``B x 3 x H x W``; on the CPU."""
    model.eval()
    with torch.no_grad():
        features = model.features(prepare_images(images.to(_device_of(model)), model.input_size))
    return features.float().cpu()


class ClassifierFeatures:
    """The classifier's penultimate features as a :class:`util.inception.FeatureExtractor`."""

    def __init__(self, model: DomainClassifier) -> None:
        self.model = model

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return penultimate_features(self.model, images)


def classifier_checkpoint(model: DomainClassifier, options: dict[str, Any], accuracy: dict[str, Any],
                          domains: dict[str, str]) -> dict[str, Any]:
    """What ``train_domain_classifier.py`` saves (see the module docstring)."""
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    return {"format_version": FORMAT_VERSION, "kind": KIND, "architecture": model.architecture(), "state": state,
            "options": options, "accuracy": accuracy, "domains": domains}


def load_domain_classifier(path: str | Path, device: str | torch.device = "cpu") -> tuple[DomainClassifier, dict[str, Any]]:
    """Load a classifier saved by ``scripts/train_domain_classifier.py``; returns (model in eval mode, checkpoint info).

    The info is the checkpoint without the weights (architecture, options, accuracy, domains).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"domain classifier {path} not found; train one with "
                        f"python scripts/train_domain_classifier.py --dataroot DATAROOT")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise UserError(f"domain classifier {path} cannot be read ({type(err).__name__}: {err})") from None
    if not isinstance(saved, dict) or saved.get("kind") != KIND or saved.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path} is not a domain classifier of this toolkit (train one with "
                        f"scripts/train_domain_classifier.py)")
    model = DomainClassifier(**saved["architecture"])
    model.load_state_dict(saved["state"])
    model.to(device).eval()
    info = {key: value for key, value in saved.items() if key != "state"}
    return model, info
