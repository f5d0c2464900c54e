"""The project's domain classifier: SAAGAN's CAM classifier C and the evaluation's judge.

A backbone whose feature map goes through a 1x1 convolution (one channel per class, in place of
the last fully connected layer), global average pooling and a softmax (SAAGAN Sec. 3.1). The 1x1
convolution applied before the pooling gives the class activation map (CAM, Eq. 1):
``C(x) = f(x) . W_c`` (:meth:`DomainClassifier.cam`). It is a model component (SAAGAN freezes
one as its prior), trained by :mod:`models.classifier_training`; the evaluation's measures on it
(target-domain rate, classifier-feature KID) are in :mod:`evaluation.domain_classifier`.

Backbones (``--backbone``):
- ``small``: ``n_layers`` blocks of 4x4 stride-2 convolution, batch norm (none on the first
  block, as in the PatchGAN of Isola et al. 2017) and LeakyReLU(0.2), doubling the width up to
  8x; trains from scratch on a CPU in minutes. At 64 px the last feature map is 4x4, at 128 px
  8x8 (the CAM's resolution).
- ``resnet50``: torchvision's ResNet-50 up to its last residual stage (2048 channels, stride
  32), started from the standard ImageNet weights file (``resnet50-0676ba61.pth``, torchvision's
  ``ResNet50_Weights.IMAGENET1K_V1``, or the V2 file ``resnet50-11ad3fa6.pth``) given with
  ``--backbone_weights`` or found in the torch hub cache. Nothing is downloaded, and a missing
  file is an error naming it, never random weights in silence (``--backbone_weights scratch``
  asks for random initial weights explicitly). Its CAM is 1/32 of the input: 256 px gives 8x8.

Checkpoint (written with :func:`util.checkpoint.atomic_save`)::

    {"format_version": 1, "kind": "domain_classifier", "architecture": {...}, "state": state_dict,
     "options": {...}, "accuracy": {...}, "domains": {class name: training folder}}

The class order is the order of ``domains``. Classifiers saved before classes were
generalised had one logit ("domain B"); they still load (as ``n_classes=1``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from util.checkpoint import FORMAT_VERSION, refused_as_code, safe_load, unsafe_file_message
from util.errors import UserError

KIND = "domain_classifier"
BACKBONES = ("small", "resnet50")
RESNET50_WEIGHTS_FILES = ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth")
CAM_KINDS = ("own", "difference")
# A pretrained ResNet-50's CAM is 1/32 of the input: 7x7 is its ImageNet resolution (224 px).
MIN_RESNET50_CAM_SIDE = 7


def cam_resolution_problem(backbone: str, input_size: int) -> str | None:
    """Why a classifier of this input size would give an unusable CAM, or ``None``."""
    if backbone != "resnet50":
        return None
    side = input_size // 32
    if side < MIN_RESNET50_CAM_SIDE:
        smallest = 32 * MIN_RESNET50_CAM_SIDE
        return (f"--size {input_size}: the resnet50 backbone's class activation map would be {side}x{side} (1/32 of the "
                f"input); use --size {smallest} or more (256 gives 8x8)")
    return None


def small_backbone(width: int, n_layers: int) -> tuple[nn.Sequential, int]:
    """conv-(BN)-LeakyReLU x ``n_layers``, stride 2 each; returns the trunk and its output channels."""
    layers: list[nn.Module] = []
    channels_in = 3
    for i in range(n_layers):
        channels_out = width * min(2**i, 8)
        layers.append(nn.Conv2d(channels_in, channels_out, 4, stride=2, padding=1, bias=i == 0))
        if i > 0:
            layers.append(nn.BatchNorm2d(channels_out))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        channels_in = channels_out
    return nn.Sequential(*layers), channels_in


def find_resnet50_weights(weights: str | None) -> Path | None:
    """The ImageNet weights file to start ResNet-50 from (``None`` for ``scratch``); a clear error when absent."""
    if weights == "scratch":
        return None
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise UserError(
                f"--backbone_weights {path} does not exist. It should be torchvision's ImageNet ResNet-50 file "
                f"({RESNET50_WEIGHTS_FILES[0]}, ResNet50_Weights.IMAGENET1K_V1); copy it here from a machine with "
                f"internet access, or pass --backbone_weights scratch to start from random weights"
            )
        return path
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    for name in RESNET50_WEIGHTS_FILES:
        if (hub / name).is_file():
            return hub / name
    raise UserError(
        f"--backbone resnet50 needs torchvision's ImageNet weights {RESNET50_WEIGHTS_FILES[0]} (or "
        f"{RESNET50_WEIGHTS_FILES[1]}), and none is in {hub}; nothing is downloaded. Pass --backbone_weights PATH, "
        f"put the file in {hub}, use --backbone small, or --backbone_weights scratch for random initial weights"
    )


def resnet50_backbone(weights: str | None) -> tuple[nn.Sequential, int, str]:
    """torchvision's ResNet-50 without its pooling and classifier; returns (trunk, channels, weights used)."""
    import torchvision

    net = torchvision.models.resnet50(weights=None)
    path = find_resnet50_weights(weights)
    if path is not None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
            net.load_state_dict(state, strict=False)
        except Exception as err:  # noqa: BLE001 - any failure means the file is not the expected one
            raise UserError(f"--backbone_weights {path} is not a torchvision ResNet-50 state_dict ({err})") from None
    trunk = nn.Sequential(ImageNetInput(), net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3,
                          net.layer4)
    return trunk, 2048, str(path) if path else "scratch"


class ImageNetInput(nn.Module):
    """Images in [-1, 1] to the normalisation torchvision's ImageNet weights expect."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x + 1) / 2 - self.mean) / self.std


class DomainClassifier(nn.Module):
    """backbone -> 1x1 conv (one channel per class) -> global average pool -> class logits."""

    def __init__(
        self,
        input_size: int = 64,
        width: int = 32,
        n_layers: int = 4,
        n_classes: int = 2,
        backbone: str = "small",
        backbone_weights: str | None = "scratch",
    ) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
        stride = 32 if backbone == "resnet50" else 2**n_layers
        if input_size < stride:
            raise ValueError(f"input_size {input_size} is too small for the {backbone} backbone (stride {stride})")
        self.input_size, self.width, self.n_layers = input_size, width, n_layers
        self.n_classes, self.backbone = n_classes, backbone
        if backbone == "small":
            self.trunk, channels = small_backbone(width, n_layers)
            self.backbone_weights = "scratch"
        else:
            self.trunk, channels, self.backbone_weights = resnet50_backbone(backbone_weights)
        self.feature_dim = channels
        self.head = nn.Conv2d(channels, n_classes, 1)

    def architecture(self) -> dict[str, Any]:
        return {"input_size": self.input_size, "width": self.width, "n_layers": self.n_layers,
                "n_classes": self.n_classes, "backbone": self.backbone}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features: the globally pooled last feature map, ``B x feature_dim``."""
        return self.trunk(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``B x n_classes`` for inputs ``B x 3 x S x S`` in [-1, 1] (pooling commutes with the 1x1 conv)."""
        return self.head(self.trunk(x)).mean(dim=(2, 3))

    def cam(self, x: torch.Tensor, classes: torch.Tensor, kind: str = "own") -> torch.Tensor:
        """Class activation maps ``B x 1 x h x w`` of ``classes`` (one index per image), before pooling.

        ``own``: the class's own map ``f(x) . w_c`` (SAAGAN Eq. 1). ``difference``: the own map
        minus the mean of the other classes' maps. With a softmax head, the gradient of the
        cross-entropy moves every class's weights by amounts that sum to zero, so the mean of the
        class weights keeps its random initial value: with two classes, each own map is half
        ``(w_A - w_B) . f(x)`` (what training shaped) and half ``(w_A + w_B) . f(x) / 2`` (an
        untrained random projection of the features). The difference map is the trained part alone.
        """
        if kind not in CAM_KINDS:
            raise ValueError(f"kind must be one of {CAM_KINDS}, got {kind!r}")
        maps = self.head(self.trunk(x))
        if self.n_classes == 1:  # the one logit is "domain B": class A's map is its negative
            maps = torch.cat([-maps, maps], 1)
        index = classes.view(-1, 1, 1, 1).expand(-1, 1, *maps.shape[-2:])
        own = maps.gather(1, index)
        if kind == "own":
            return own
        others = (maps.sum(1, keepdim=True) - own) / (maps.shape[1] - 1)
        return own - others


def prepare_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """``uint8`` B x 3 x H x W -> float in [-1, 1] at ``size x size`` (antialiased bilinear)."""
    return resize_for(images.float() / 127.5 - 1.0, size)


def resize_for(x: torch.Tensor, size: int) -> torch.Tensor:
    """A float batch in [-1, 1] at the classifier's input size (antialiased bilinear)."""
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


def normalised_cam(model: DomainClassifier, images: torch.Tensor, classes: torch.Tensor, kind: str = "own") -> torch.Tensor:
    """SAAGAN's spatial prior: the CAM of each image's own class (``kind``: see
    :meth:`DomainClassifier.cam`), min-max normalised to [0, 1] per image and resized (bilinear)
    to the images' size; ``images`` float in [-1, 1]. No gradients."""
    with torch.no_grad():
        maps = model.cam(resize_for(images, model.input_size), classes, kind).float()
        low = maps.amin(dim=(2, 3), keepdim=True)
        high = maps.amax(dim=(2, 3), keepdim=True)
        maps = (maps - low) / (high - low).clamp_min(1e-8)
        return F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)


def classifier_checkpoint(model: DomainClassifier, options: dict[str, Any], accuracy: dict[str, Any],
                          domains: dict[str, str]) -> dict[str, Any]:
    """What ``train_domain_classifier.py`` saves (see the module docstring)."""
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    return {"format_version": FORMAT_VERSION, "kind": KIND, "architecture": model.architecture(), "state": state,
            "options": options, "accuracy": accuracy, "domains": domains,
            "backbone_weights": model.backbone_weights}


def load_domain_classifier(path: str | Path, device: str | torch.device = "cpu") -> tuple[DomainClassifier, dict[str, Any]]:
    """Load a classifier saved by ``scripts/train_domain_classifier.py``; returns (model in eval mode, checkpoint info).

    The info is the checkpoint without the weights (architecture, options, accuracy, domains).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"domain classifier {path} not found; train one with "
                        f"python scripts/train_domain_classifier.py --dataroot DATAROOT")
    try:
        saved = safe_load(path)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same to the user
        if refused_as_code(err):
            raise UserError(unsafe_file_message(path, "domain classifier")) from None
        raise UserError(f"domain classifier {path} cannot be read ({type(err).__name__}: {err})") from None
    if not isinstance(saved, dict) or saved.get("kind") != KIND or saved.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path} is not a domain classifier of this toolkit (train one with "
                        f"scripts/train_domain_classifier.py)")
    architecture = dict(saved["architecture"])
    state = dict(saved["state"])
    if "n_classes" not in architecture:  # the first layout: a linear "domain B" logit
        architecture["n_classes"] = 1
        state["head.weight"] = state["head.weight"][:, :, None, None]
    # The weights come from the file: the backbone's starting point is not needed again.
    model = DomainClassifier(**architecture, backbone_weights="scratch")
    model.load_state_dict(state)
    model.to(device).eval()
    info = {key: value for key, value in saved.items() if key != "state"}
    return model, info
