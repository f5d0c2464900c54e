"""Attention maps against ground-truth masks: the measures of SAAGAN Sec. 4.1 (Eq. 15).

Pure functions on numpy arrays (torch tensors are accepted and converted). Mask conventions:
a mask is HxW (or HxWx1 / 1xHxW). ``bool`` masks are used as is; integer masks holding only
{0, 1} are used as is, other integer masks are taken as 0..255 and thresholded at >= 128;
floating-point masks are thresholded at >= 0.5. ``True`` / 1 marks the foreground (the object).

Used by the evaluation (evaluation/evaluate.py) and by the CAM classifier's report
(models/classifier_training.py), hence here rather than in evaluation/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

ArrayLike = Union[np.ndarray, "torch.Tensor"]


def _to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a numpy array; torch tensors are detached and moved to the CPU."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _squeeze_to_2d(array: np.ndarray, name: str) -> np.ndarray:
    """Accept HxW, 1xHxW or HxWx1 and return HxW."""
    if array.ndim == 3 and 1 in (array.shape[0], array.shape[2]):
        array = array[0] if array.shape[0] == 1 else array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"{name} must be HxW (or 1xHxW / HxWx1), got shape {array.shape}")
    return array


def binarize_mask(mask: ArrayLike) -> np.ndarray:
    """Return an HxW ``bool`` foreground mask (True = object, False = background).

    ``bool`` masks are kept; integer masks holding only {0, 1} are kept; other integer
    masks are read as 0..255 and thresholded at >= 128; floating-point masks are
    thresholded at >= 0.5. HxWx1 and 1xHxW are squeezed.
    """
    array = _squeeze_to_2d(_to_numpy(mask), "mask")
    if array.dtype == np.bool_:
        return array
    if np.issubdtype(array.dtype, np.integer):
        if np.all((array == 0) | (array == 1)):
            return array == 1
        return array >= 128
    if np.issubdtype(array.dtype, np.floating):
        return array >= 0.5
    raise TypeError(f"unsupported mask dtype {array.dtype}")


def resize_mask(mask: ArrayLike, shape: tuple[int, int]) -> np.ndarray:
    """Binarize ``mask`` and resize it to ``shape`` = (H, W) with nearest-neighbour sampling."""
    binary = binarize_mask(mask)
    if binary.shape == tuple(shape):
        return binary
    height, width = shape
    image = Image.fromarray(binary.astype(np.uint8) * 255)
    return np.asarray(image.resize((width, height), Image.NEAREST)) >= 128


def _attention_map(att: ArrayLike) -> np.ndarray:
    """Check that ``att`` is an HxW map with values in [0, 1]; return it as float64."""
    array = _squeeze_to_2d(_to_numpy(att), "att").astype(np.float64)
    if array.size == 0:
        raise ValueError("attention map is empty")
    tolerance = 1e-6
    if not np.all(np.isfinite(array)) or array.min() < -tolerance or array.max() > 1 + tolerance:
        raise ValueError(
            f"attention map must lie in [0, 1], got range [{array.min():.4g}, {array.max():.4g}]"
        )
    return np.clip(array, 0.0, 1.0)


def attention_mae(att: ArrayLike, mask: ArrayLike) -> float:
    """Mean absolute error between an attention map and the ground-truth mask.

    SAAGAN Eq. (15): ``MAE = 1/(H W) sum_{i,j} |S_ij - T_ij|`` with ``S`` the continuous
    attention map in [0, 1] and ``T`` the binary ground truth. ``att`` is HxW (1xHxW and
    HxWx1 accepted); ``mask`` follows :func:`binarize_mask` and, if its size differs, is
    resized to the attention map's size with nearest-neighbour sampling (the
    attention map itself is never resampled).
    """
    attention = _attention_map(att)
    truth = resize_mask(mask, attention.shape).astype(np.float64)
    return float(np.mean(np.abs(attention - truth)))


def attention_iou(att: ArrayLike, mask: ArrayLike, threshold: float = 0.5) -> float:
    """Intersection over union of the thresholded attention map and the ground-truth mask.

    The predicted foreground is ``att > threshold`` (strictly greater). The mask is
    binarized and resized as in :func:`attention_mae`. If both the prediction and the
    ground truth are empty (union empty) the IoU is defined as 1.0 (perfect agreement
    that there is no object); if only one is empty it is 0.0.
    """
    attention = _attention_map(att)
    predicted = attention > threshold
    truth = resize_mask(mask, attention.shape)
    union = np.logical_or(predicted, truth).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(predicted, truth).sum() / union)
