"""Inception features for FID / KID, computed "the standard way", without internet access.

The network is torch-fidelity's ``FeatureExtractorInceptionV3`` (registered there as
``inception-v3-compat``): the TF-slim Inception-v3 of the original FID code
(graph 2015-12-05) converted to PyTorch, with the TensorFlow-1.x-compatible bilinear
resize to 299x299 inside the network. We take its 2048-d average-pool features
(feature ``"2048"``), which is what FID (Heusel et al. 2017) and KID (Binkowski et al.
2018) use.

The weights are never downloaded here. ``load_inception_extractor(weights_path)`` uses
the given file, or else looks for the file torch-fidelity would have downloaded in the
torch hub cache (``torch.hub.get_dir()/checkpoints/<INCEPTION_WEIGHTS_FILENAME>``,
which is also where torch-fidelity's own download ends up). If it is absent,
:class:`InceptionWeightsMissing` explains where to get it and where to put it. Random
weights are never substituted.

Note: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` has a similar name but is a
separate download (not verified here to be bit-identical); it is not looked up
automatically. It can be passed explicitly as ``weights_path``; the state dict is loaded
strictly, so a file with different parameter names fails loudly.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from util.errors import UserError

#: File name of the FID Inception weights torch-fidelity downloads (hub cache name).
INCEPTION_WEIGHTS_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
#: URL torch-fidelity downloads them from (0.4.0; a test checks the installed version).
INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    + INCEPTION_WEIGHTS_FILENAME
)
#: Dimension of the Inception pool features used by FID and KID.
INCEPTION_FEATURE_DIM = 2048
_FEATURE_NAME = "2048"
_REGISTRY_NAME = "inception-v3-compat"


class InceptionWeightsMissing(UserError, FileNotFoundError):
    """The FID Inception weights file was not found (nothing is downloaded)."""


@runtime_checkable
class FeatureExtractor(Protocol):
    """Anything that maps a batch of uint8 images to feature vectors."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Bx3xHxW ``uint8`` images in [0, 255] -> BxD float features."""
        ...


def default_weights_path() -> Path:
    """Where the weights are looked up when no path is given (torch hub checkpoint cache).

    ``torch.hub.get_dir()`` honours ``$TORCH_HOME`` (default ``~/.cache/torch``), so this
    is normally ``~/.cache/torch/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth``.
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILENAME


def _missing_weights_message(looked_at: Sequence[Path]) -> str:
    places = "\n".join(f"  - {path}" for path in looked_at)
    return (
        f"Inception weights file '{INCEPTION_WEIGHTS_FILENAME}' not found. Looked at:\n{places}\n"
        "FID/KID need the standard FID Inception-v3 weights used by torch-fidelity; this "
        "machine will not download them. Get the file from\n"
        f"  {INCEPTION_WEIGHTS_URL}\n"
        "on a machine with internet access, then either pass it with "
        "--inception_weights PATH (weights_path=PATH) or copy it to\n"
        f"  {default_weights_path()}"
    )


def resolve_weights_path(weights_path: str | os.PathLike[str] | None) -> Path:
    """Return an existing weights file, or raise :class:`InceptionWeightsMissing`.

    An explicit ``weights_path`` must exist; ``None`` means :func:`default_weights_path`.
    """
    candidate = (
        Path(weights_path).expanduser() if weights_path is not None else default_weights_path()
    )
    if not candidate.is_file():
        raise InceptionWeightsMissing(_missing_weights_message([candidate]))
    return candidate


class TorchFidelityInception:
    """Callable wrapper: uint8 Bx3xHxW -> Bx2048 float32 pool features (on the CPU).

    torch-fidelity's network resizes internally to 299x299 (TF-1.x-compatible bilinear)
    and normalises ``(x - 128) / 128``; inputs of any size are fine.
    """

    def __init__(self, model: torch.nn.Module, device: str) -> None:
        self.model = model
        self.device = torch.device(device)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            (features,) = self.model(images.to(self.device))
        return features.float()


def load_inception_extractor(
    weights_path: str | os.PathLike[str] | None = None, device: str = "cpu"
) -> FeatureExtractor:
    """Build torch-fidelity's FID Inception-v3 from a local weights file.

    ``weights_path=None`` looks in the torch hub cache (:func:`default_weights_path`).
    Raises :class:`InceptionWeightsMissing` if the file is absent; never downloads and
    never falls back to random weights (torch-fidelity is always given the path).
    """
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path = resolve_weights_path(weights_path)
    try:
        model = FeatureExtractorInceptionV3(
            _REGISTRY_NAME, [_FEATURE_NAME], feature_extractor_weights_path=str(path)
        )
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as error:
        raise UserError(
            f"could not load Inception weights from {path}: {error}\n"
            f"Expected torch-fidelity's '{INCEPTION_WEIGHTS_FILENAME}' ({INCEPTION_WEIGHTS_URL})."
        ) from error
    model.to(device)
    model.eval()
    return TorchFidelityInception(model, device)


# --------------------------------------------------------------------------------------
# Images -> features
# --------------------------------------------------------------------------------------


def load_image_uint8(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an image file as a 3xHxW ``uint8`` RGB tensor.

    Grayscale, palette and 16-bit images are converted with PIL's ``convert("RGB")``;
    RGBA / LA images have their alpha channel dropped (no compositing onto a background).
    """
    with Image.open(path) as image:
        rgb = np.array(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


def _same_size_runs(images: list[torch.Tensor]) -> Iterator[list[torch.Tensor]]:
    """Split a list into consecutive runs of images with equal HxW (order preserved)."""
    run: list[torch.Tensor] = []
    for image in images:
        if run and image.shape != run[0].shape:
            yield run
            run = []
        run.append(image)
    if run:
        yield run


def _features_of_batch(
    images: list[torch.Tensor], extractor: FeatureExtractor, device: str
) -> np.ndarray:
    batch = torch.stack(images).to(device)
    with torch.no_grad():
        features = extractor(batch)
    if features.ndim != 2 or features.shape[0] != len(images):
        raise ValueError(
            f"extractor returned shape {tuple(features.shape)} for a batch of {len(images)}"
        )
    return features.detach().float().cpu().numpy()


def extract_features(
    image_paths: Sequence[Path],
    extractor: FeatureExtractor,
    batch_size: int = 50,
    device: str = "cpu",
    progress: bool = True,
) -> np.ndarray:
    """Features (N, D) float32 of the images at ``image_paths``, in the given order.

    Images are read as RGB uint8 (:func:`load_image_uint8`) and passed at their own size:
    resizing is the extractor's job (torch-fidelity's Inception resizes to 299x299
    internally, exactly as torch-fidelity does on its own). Batches hold at most
    ``batch_size`` images; images of different sizes are sent in separate batches.
    Works with any :class:`FeatureExtractor`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    paths = list(image_paths)
    if not paths:
        raise ValueError("no images to extract features from")
    chunks: list[np.ndarray] = []
    with tqdm(total=len(paths), disable=not progress, unit="img", desc="features") as bar:
        for start in range(0, len(paths), batch_size):
            images = [load_image_uint8(path) for path in paths[start : start + batch_size]]
            for run in _same_size_runs(images):
                chunks.append(_features_of_batch(run, extractor, device))
                bar.update(len(run))
    return np.concatenate(chunks, axis=0)
