"""The domain classifier as an offline judge of translations (see ``scripts/evaluate.py``).

Inception-based FID/KID need a downloaded weights file; the project's own classifier
(:class:`models.classifier.DomainClassifier`, trained on the same data) needs none, so runs can
be compared on any machine. It gives two measures:

* the fraction of translated images it assigns to the target domain (the "classification
  accuracy" style measure of the translation literature, with our own classifier);
* a KID (Binkowski et al. 2018, the estimator of :mod:`evaluation.metrics`) on its penultimate
  features. That number is *not* Inception KID: it is comparable only between runs evaluated
  with the same classifier file, and is always reported under the name
  "classifier-feature KID".
"""

from __future__ import annotations

import torch
from torch import nn

from models.classifier import DomainClassifier, prepare_images


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def class_probabilities(model: DomainClassifier, images: torch.Tensor) -> torch.Tensor:
    """``B x n_classes`` probabilities for ``uint8`` images ``B x 3 x H x W`` (any size); on the CPU."""
    model.eval()
    with torch.no_grad():
        logits = model(prepare_images(images.to(_device_of(model)), model.input_size)).float()
    if model.n_classes == 1:
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p], 1).cpu()
    return torch.softmax(logits, 1).cpu()


def predict_proba(model: DomainClassifier, images: torch.Tensor) -> torch.Tensor:
    """Probability of domain B (the second class) for ``uint8`` images; on the CPU."""
    return class_probabilities(model, images)[:, 1]


def penultimate_features(model: DomainClassifier, images: torch.Tensor) -> torch.Tensor:
    """Penultimate features of ``uint8`` images ``B x 3 x H x W``; on the CPU."""
    model.eval()
    with torch.no_grad():
        features = model.features(prepare_images(images.to(_device_of(model)), model.input_size))
    return features.float().cpu()


class ClassifierFeatures:
    """The classifier's penultimate features as a :class:`evaluation.inception.FeatureExtractor`."""

    def __init__(self, model: DomainClassifier) -> None:
        self.model = model

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return penultimate_features(self.model, images)
