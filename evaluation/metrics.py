"""Numeric core of the evaluation used by the attention-guided translation papers.

Pure functions on numpy arrays (torch tensors are accepted and converted with
``.detach().cpu().numpy()``; the layout is NOT changed, so pass images as HxWxC).
Nothing here reads files or runs networks; ``util/inception.py`` produces the features.

Distribution metrics (on Inception pool features, one row per image):

* FID, Heusel et al. 2017 ("GANs trained by a two time-scale update rule ..."):
  ``d^2 = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2})``.
* KID, Binkowski et al. 2018 ("Demystifying MMD GANs"): the unbiased estimate of the
  squared MMD with the cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, averaged
  over random subsets; the papers report ``KID x 100 +- std x 100`` (see
  :func:`kid_for_report`). UAIT (Mejjati et al. 2018, Sec. 4, Table 1) and GuideGAN
  (Table 3) report the *mean KID*: the average of KID against the target domain and
  against the source domain (:func:`mean_kid`). UAIT uses 10 splits of size 50
  (``n_subsets=10, subset_size=50``); torch-fidelity's defaults are 100 x 1000.

Attention-map metrics (SAAGAN Sec. 4.1, Eq. 15): :func:`util.mask_measures.attention_mae`,
:func:`util.mask_measures.attention_iou` (in util/ because SAAGAN's CAM classifier reports them too).

Image metrics: :func:`psnr`, :func:`ssim` (Wang et al. 2004), and the region-restricted
:func:`masked_psnr` / :func:`masked_l1` for background preservation and foreground change.

Image conventions (all image functions): HxW or HxWxC arrays, either ``uint8`` in
[0, 255] or floating point. ``data_range=None`` means "infer from dtype": 255 for
``uint8``, 1.0 for floating point (which must then lie in [0, 1], otherwise a
``ValueError`` asks for an explicit ``data_range``; e.g. images in [-1, 1] need
``data_range=2.0``). Other integer dtypes need an explicit ``data_range``.

Mask conventions: a mask is HxW (or HxWx1). ``bool`` masks are used as is; integer
masks holding only {0, 1} are used as is, other integer masks are taken as 0..255 and
thresholded at >= 128; floating-point masks are thresholded at >= 0.5. ``True`` / 1
marks the foreground (the object), 0 the background. See :func:`util.mask_measures.binarize_mask`.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any, Literal, Union

import numpy as np
import scipy.linalg
import scipy.ndimage

from util.mask_measures import binarize_mask

if TYPE_CHECKING:
    import torch

ArrayLike = Union[np.ndarray, "torch.Tensor"]
Region = Literal["background", "foreground"]

#: Factor by which the papers scale KID and its std in their tables ("KID x 100").
KID_REPORT_SCALE = 100.0


# --------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------


def _to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a numpy array; torch tensors are detached and moved to the CPU."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _as_features(feats: ArrayLike, name: str) -> np.ndarray:
    """Check that ``feats`` is an (N, D) matrix and return it as float64."""
    array = _to_numpy(feats).astype(np.float64, copy=False)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) feature matrix, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf")
    return array


def _check_same_dim(feats1: np.ndarray, feats2: np.ndarray) -> None:
    if feats1.shape[1] != feats2.shape[1]:
        raise ValueError(f"feature dimensions differ: {feats1.shape[1]} vs {feats2.shape[1]}")


# --------------------------------------------------------------------------------------
# FID
# --------------------------------------------------------------------------------------


def feature_statistics(feats: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased (ddof=1) covariance of an (N, D) feature matrix, as for FID.

    Needs N >= 2. Cache these to compare many result sets against one reference set.
    """
    array = _as_features(feats, "feats")
    if array.shape[0] < 2:
        raise ValueError(f"need at least 2 feature rows for a covariance, got {array.shape[0]}")
    return array.mean(axis=0), np.cov(array, rowvar=False, ddof=1).reshape(array.shape[1], -1)


def _sqrtm_of_product(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> np.ndarray:
    """Principal square root of ``sigma1 @ sigma2``, regularised if it is not finite.

    When the product is (near-)singular, e.g. fewer samples than dimensions, ``sqrtm``
    can return non-finite values; then ``eps * I`` is added to both covariances and the
    square root is recomputed (the usual remedy of the reference TTUR / pytorch-fid
    implementations).
    """
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.all(np.isfinite(covmean)):
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    return np.asarray(covmean)


def _real_part_checked(matrix: np.ndarray, imag_tol: float) -> np.ndarray:
    """Drop the imaginary part that round-off gives ``sqrtm``; refuse a large one."""
    if np.iscomplexobj(matrix):
        largest_imag = float(np.max(np.abs(np.diagonal(matrix).imag)))
        if largest_imag > imag_tol:
            raise ValueError(
                f"sqrtm(sigma1 @ sigma2) has a large imaginary component ({largest_imag:.3g}); "
                "the covariances are probably not valid (symmetric positive semi-definite)"
            )
        matrix = matrix.real
    return matrix


def frechet_distance(
    mu1: ArrayLike,
    sigma1: ArrayLike,
    mu2: ArrayLike,
    sigma2: ArrayLike,
    *,
    eps: float = 1e-6,
    imag_tol: float = 1e-3,
) -> float:
    """Squared Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (FID).

    Heusel et al. 2017 (the Frechet distance between the two fitted Gaussians):
    ``d^2 = ||mu1 - mu2||^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr((sigma1 sigma2)^{1/2})``.

    ``(sigma1 sigma2)^{1/2}`` is computed with ``scipy.linalg.sqrtm``. Numerical
    handling, as in the reference implementations:

    * if the result is not finite (near-singular product, typical when there are fewer
      images than feature dimensions), ``eps * I`` is added to both covariances and the
      square root is recomputed;
    * the small imaginary parts produced by round-off are discarded; if an imaginary
      part on the diagonal exceeds ``imag_tol`` a ``ValueError`` is raised.
    """
    mu1_arr = np.atleast_1d(_to_numpy(mu1).astype(np.float64))
    mu2_arr = np.atleast_1d(_to_numpy(mu2).astype(np.float64))
    sigma1_arr = np.atleast_2d(_to_numpy(sigma1).astype(np.float64))
    sigma2_arr = np.atleast_2d(_to_numpy(sigma2).astype(np.float64))
    dim = mu1_arr.shape[0]
    if mu1_arr.shape != (dim,) or mu2_arr.shape != (dim,):
        raise ValueError(
            f"means must be vectors of the same length: {mu1_arr.shape}, {mu2_arr.shape}"
        )
    if sigma1_arr.shape != (dim, dim) or sigma2_arr.shape != (dim, dim):
        raise ValueError(f"covariances must be {dim}x{dim}: {sigma1_arr.shape}, {sigma2_arr.shape}")

    diff = mu1_arr - mu2_arr
    covmean = _real_part_checked(_sqrtm_of_product(sigma1_arr, sigma2_arr, eps), imag_tol)
    distance = diff @ diff + np.trace(sigma1_arr) + np.trace(sigma2_arr) - 2.0 * np.trace(covmean)
    return float(distance)


def fid_from_features(feats1: ArrayLike, feats2: ArrayLike, *, eps: float = 1e-6) -> float:
    """FID between two (N, D) feature sets (e.g. 2048-d Inception pool features).

    Fits a Gaussian to each set (:func:`feature_statistics`: mean and ddof=1
    covariance) and returns :func:`frechet_distance` of the two. Each set needs at
    least 2 rows; with fewer rows than dimensions the covariances are singular and the
    ``eps * I`` regularisation of :func:`frechet_distance` may kick in (FID is biased
    upwards for small N; KID is preferred there, see UAIT Sec. 4).
    """
    array1 = _as_features(feats1, "feats1")
    array2 = _as_features(feats2, "feats2")
    _check_same_dim(array1, array2)
    mu1, sigma1 = feature_statistics(array1)
    mu2, sigma2 = feature_statistics(array2)
    return frechet_distance(mu1, sigma1, mu2, sigma2, eps=eps)


# --------------------------------------------------------------------------------------
# KID
# --------------------------------------------------------------------------------------


def polynomial_kernel(
    x: np.ndarray,
    y: np.ndarray,
    *,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
) -> np.ndarray:
    """Kernel matrix ``K[i, j] = (gamma * x_i . y_j + coef0) ** degree``.

    ``gamma=None`` means ``1 / d`` (d = feature dimension), which with the defaults
    gives KID's kernel ``k(x, y) = (x.y / d + 1)^3`` (Binkowski et al. 2018, Sec. 5).
    """
    if gamma is None:
        gamma = 1.0 / x.shape[1]
    return (gamma * (x @ y.T) + coef0) ** degree


def _off_diagonal_mean(kernel_matrix: np.ndarray) -> float:
    """Mean of the entries of a square matrix excluding its diagonal."""
    size = kernel_matrix.shape[0]
    off_diagonal_sum = kernel_matrix.sum() - np.trace(kernel_matrix)
    return float(off_diagonal_sum / (size * (size - 1)))


def kid_unbiased_mmd2(
    x: ArrayLike,
    y: ArrayLike,
    *,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
) -> float:
    """Unbiased estimate of MMD^2 between the sets ``x`` (m, d) and ``y`` (n, d).

    Binkowski et al. 2018, Sec. 2 / Gretton et al. 2012 (MMD^2_u), with the
    polynomial kernel of :func:`polynomial_kernel`::

        MMD^2_u = 1/(m(m-1)) sum_{i != j} k(x_i, x_j)
                + 1/(n(n-1)) sum_{i != j} k(y_i, y_j)
                - 2/(m n)    sum_{i, j}   k(x_i, y_j)

    For m == n this is exactly the "unbiased" estimator of torch-fidelity and of the
    authors' code. It can be slightly negative when the distributions agree. Needs
    m, n >= 2.
    """
    x_arr = _as_features(x, "x")
    y_arr = _as_features(y, "y")
    _check_same_dim(x_arr, y_arr)
    if x_arr.shape[0] < 2 or y_arr.shape[0] < 2:
        raise ValueError(
            "the unbiased MMD^2 needs at least 2 samples per set, "
            f"got {x_arr.shape[0]} and {y_arr.shape[0]}"
        )
    if gamma is None:
        gamma = 1.0 / x_arr.shape[1]
    kernel = {"degree": degree, "gamma": gamma, "coef0": coef0}
    k_xx = polynomial_kernel(x_arr, x_arr, **kernel)
    k_yy = polynomial_kernel(y_arr, y_arr, **kernel)
    k_xy = polynomial_kernel(x_arr, y_arr, **kernel)
    return _off_diagonal_mean(k_xx) + _off_diagonal_mean(k_yy) - 2.0 * float(k_xy.mean())


def kid_effective_subset_size(n1: int, n2: int, subset_size: int) -> int:
    """Subset size actually used by :func:`kid_from_features`: ``min(subset_size, n1, n2)``."""
    effective = min(subset_size, n1, n2)
    if effective < 2:
        raise ValueError(f"KID needs at least 2 samples in each set, got {n1} and {n2}")
    return effective


def kid_subset_values(
    feats1: ArrayLike,
    feats2: ArrayLike,
    *,
    n_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
) -> np.ndarray:
    """The per-subset unbiased MMD^2 values behind :func:`kid_from_features`.

    For each of ``n_subsets`` rounds, ``s`` rows are drawn without replacement from each
    set (independently for the two sets; rows may repeat across rounds) and
    :func:`kid_unbiased_mmd2` is evaluated. ``s`` is ``subset_size`` capped by the smaller
    set (:func:`kid_effective_subset_size`); a ``UserWarning`` names the effective size
    when capping happens. The draws use ``numpy.random.RandomState(seed)`` in the same
    order as torch-fidelity (set 1 then set 2 per round), so for the same seed and sizes
    the values agree with torch-fidelity's. Returns an array of shape (n_subsets,).
    """
    array1 = _as_features(feats1, "feats1")
    array2 = _as_features(feats2, "feats2")
    _check_same_dim(array1, array2)
    if n_subsets < 1:
        raise ValueError(f"n_subsets must be >= 1, got {n_subsets}")
    size = kid_effective_subset_size(len(array1), len(array2), subset_size)
    if size < subset_size:
        warnings.warn(
            f"KID subset_size {subset_size} capped to {size} (sets have {len(array1)} and "
            f"{len(array2)} rows); effective subset size = {size}",
            UserWarning,
            stacklevel=2,
        )
    rng = np.random.RandomState(seed)
    values = np.empty(n_subsets)
    for index in range(n_subsets):
        rows1 = rng.choice(len(array1), size, replace=False)
        rows2 = rng.choice(len(array2), size, replace=False)
        values[index] = kid_unbiased_mmd2(
            array1[rows1], array2[rows2], degree=degree, gamma=gamma, coef0=coef0
        )
    return values


def kid_from_features(
    feats1: ArrayLike,
    feats2: ArrayLike,
    *,
    n_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
) -> tuple[float, float]:
    """Kernel Inception Distance: (mean, std) of the subset MMD^2 values.

    Binkowski et al. 2018; the estimator used by UAIT, GuideGAN and SAAGAN. The values are
    raw (not x 100); use :func:`kid_for_report` for the papers' "KID x 100 +- std x 100".
    The std is the population std (ddof=0) over subsets, as in torch-fidelity.
    See :func:`kid_subset_values` for the sampling (subset size capped by the smaller set,
    with a warning that names the effective size; reproducible for a ``seed``).
    """
    values = kid_subset_values(
        feats1,
        feats2,
        n_subsets=n_subsets,
        subset_size=subset_size,
        seed=seed,
        degree=degree,
        gamma=gamma,
        coef0=coef0,
    )
    return float(values.mean()), float(values.std())


def kid_for_report(mean: float, std: float) -> tuple[float, float]:
    """Scale a raw KID (mean, std) to the papers' table units: ``(100 * mean, 100 * std)``."""
    return mean * KID_REPORT_SCALE, std * KID_REPORT_SCALE


def mean_kid(
    fake_feats: ArrayLike,
    target_feats: ArrayLike,
    source_feats: ArrayLike,
    **kid_kwargs: Any,
) -> dict[str, float]:
    """ "Mean KID": average of KID(fake, target) and KID(fake, source).

    UAIT (Mejjati et al. 2018) Sec. 4 / Table 1 and GuideGAN Table 3: a translation
    should look like the target domain in the foreground and keep the source background,
    so KID is computed against both domains and averaged. ``kid_kwargs`` are those of
    :func:`kid_from_features` (UAIT: ``n_subsets=10, subset_size=50``).

    Both KIDs use the same ``seed``. The mean KID and its std are taken over subsets of
    the per-subset average ``(mmd2_target_i + mmd2_source_i) / 2`` (so ``mean_kid`` equals
    the average of ``kid_target`` and ``kid_source``; ``mean_kid_std`` is the spread of
    the averaged splits, as in UAIT's "averaged over 10 different splits").

    Returns raw values (multiply by 100 for the tables) with keys ``kid_target``,
    ``kid_target_std``, ``kid_source``, ``kid_source_std``, ``mean_kid``, ``mean_kid_std``,
    ``subset_size_target``, ``subset_size_source`` (effective sizes) and ``n_subsets``.
    """
    target_values = kid_subset_values(fake_feats, target_feats, **kid_kwargs)
    source_values = kid_subset_values(fake_feats, source_feats, **kid_kwargs)
    averaged = (target_values + source_values) / 2.0
    subset_size = kid_kwargs.get("subset_size", 1000)
    n_fake = len(_to_numpy(fake_feats))
    return {
        "kid_target": float(target_values.mean()),
        "kid_target_std": float(target_values.std()),
        "kid_source": float(source_values.mean()),
        "kid_source_std": float(source_values.std()),
        "mean_kid": float(averaged.mean()),
        "mean_kid_std": float(averaged.std()),
        "subset_size_target": kid_effective_subset_size(
            n_fake, len(_to_numpy(target_feats)), subset_size
        ),
        "subset_size_source": kid_effective_subset_size(
            n_fake, len(_to_numpy(source_feats)), subset_size
        ),
        "n_subsets": len(averaged),
    }


# --------------------------------------------------------------------------------------
# Image metrics
# --------------------------------------------------------------------------------------


def _resolve_data_range(image: np.ndarray, data_range: float | None) -> float:
    """Explicit ``data_range`` wins; otherwise 255 for uint8 and 1.0 for floats in [0, 1]."""
    if data_range is not None:
        if data_range <= 0:
            raise ValueError(f"data_range must be positive, got {data_range}")
        return float(data_range)
    if image.dtype == np.uint8:
        return 255.0
    if np.issubdtype(image.dtype, np.floating):
        if image.size and (image.min() < 0.0 or image.max() > 1.0):
            raise ValueError(
                "float image outside [0, 1]: pass data_range explicitly (e.g. 2.0 for [-1, 1])"
            )
        return 1.0
    raise ValueError(f"cannot infer data_range for dtype {image.dtype}; pass it explicitly")


def _image_pair(
    a: ArrayLike, b: ArrayLike, data_range: float | None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Check two images have equal shape (HxW or HxWxC); return float64 copies and the range."""
    a_arr, b_arr = _to_numpy(a), _to_numpy(b)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"images must have the same shape, got {a_arr.shape} and {b_arr.shape}")
    if a_arr.ndim not in (2, 3):
        raise ValueError(f"images must be HxW or HxWxC, got shape {a_arr.shape}")
    range_a = _resolve_data_range(a_arr, data_range)
    range_b = _resolve_data_range(b_arr, data_range)
    if range_a != range_b:
        raise ValueError(f"images have different inferred data ranges ({range_a} vs {range_b})")
    return a_arr.astype(np.float64), b_arr.astype(np.float64), range_a


def _psnr_from_mse(mse: float, data_range: float) -> float:
    """``10 log10(L^2 / MSE)``; inf for MSE == 0."""
    if mse == 0.0:
        return math.inf
    return float(10.0 * math.log10(data_range**2 / mse))


def psnr(a: ArrayLike, b: ArrayLike, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio ``10 log10(L^2 / MSE)`` in dB, over all pixels and channels.

    ``L = data_range`` (inferred from dtype when None, see the module docstring). Returns
    ``inf`` for identical images.
    """
    a_arr, b_arr, value_range = _image_pair(a, b, data_range)
    return _psnr_from_mse(float(np.mean((a_arr - b_arr) ** 2)), value_range)


def _region_pixels(
    a: ArrayLike, b: ArrayLike, mask: ArrayLike, region: Region, data_range: float | None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Pixels (rows of channel values) of ``a`` and ``b`` inside the selected region."""
    a_arr, b_arr, value_range = _image_pair(a, b, data_range)
    foreground = binarize_mask(mask)
    if foreground.shape != a_arr.shape[:2]:
        raise ValueError(
            f"mask shape {foreground.shape} does not match image size {a_arr.shape[:2]}"
        )
    if region == "background":
        selected = ~foreground
    elif region == "foreground":
        selected = foreground
    else:
        raise ValueError(f"region must be 'background' or 'foreground', got {region!r}")
    return a_arr[selected], b_arr[selected], value_range


def masked_psnr(
    a: ArrayLike,
    b: ArrayLike,
    mask: ArrayLike,
    data_range: float | None = None,
    *,
    region: Region = "background",
) -> float:
    """PSNR between ``a`` and ``b`` restricted to one region of a foreground mask.

    Default ``region="background"``: pixels where the mask is 0, i.e. background
    preservation between the input and the translated output. The MSE averages over the
    selected pixels and all channels. Returns ``nan`` if the region is empty and ``inf``
    if the images are identical inside it. Images/masks follow the module conventions.
    """
    a_pixels, b_pixels, value_range = _region_pixels(a, b, mask, region, data_range)
    if a_pixels.size == 0:
        return math.nan
    return _psnr_from_mse(float(np.mean((a_pixels - b_pixels) ** 2)), value_range)


def masked_l1(
    a: ArrayLike,
    b: ArrayLike,
    mask: ArrayLike,
    data_range: float | None = None,
    *,
    region: Region = "background",
) -> float:
    """Mean absolute difference inside one region, normalised by ``data_range``.

    ``mean(|a - b|) / data_range`` over the selected pixels and all channels, so the
    result is in [0, 1] whatever the dtype (uint8 images are divided by 255).
    ``region="background"`` (mask == 0) measures background preservation;
    ``region="foreground"`` (mask == 1) measures how much the object changed. Returns
    ``nan`` if the region is empty.
    """
    a_pixels, b_pixels, value_range = _region_pixels(a, b, mask, region, data_range)
    if a_pixels.size == 0:
        return math.nan
    return float(np.mean(np.abs(a_pixels - b_pixels)) / value_range)


SSIM_WINDOW_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def gaussian_window_1d(size: int = SSIM_WINDOW_SIZE, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian of odd ``size``; its outer product is Wang et al.'s window."""
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    weights = np.exp(-(offsets**2) / (2.0 * sigma**2))
    return weights / weights.sum()


def _gaussian_local_mean(channel: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Gaussian-weighted local means at every position where the window fits ('valid')."""
    radius = len(window) // 2
    smoothed = scipy.ndimage.correlate1d(channel, window, axis=0, mode="reflect")
    smoothed = scipy.ndimage.correlate1d(smoothed, window, axis=1, mode="reflect")
    return smoothed[radius:-radius, radius:-radius]


def _ssim_channel(x: np.ndarray, y: np.ndarray, data_range: float, window: np.ndarray) -> float:
    """Mean SSIM index of one channel (Wang et al. 2004, Eq. 13, mean over the valid map)."""
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_x = _gaussian_local_mean(x, window)
    mu_y = _gaussian_local_mean(y, window)
    var_x = _gaussian_local_mean(x * x, window) - mu_x**2
    var_y = _gaussian_local_mean(y * y, window) - mu_y**2
    cov_xy = _gaussian_local_mean(x * y, window) - mu_x * mu_y
    numerator = (2.0 * mu_x * mu_y + c1) * (2.0 * cov_xy + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return float(np.mean(numerator / denominator))


def ssim(a: ArrayLike, b: ArrayLike, data_range: float | None = None) -> float:
    """Structural similarity (Wang et al. 2004), averaged over RGB channels.

    The standard formulation: 11x11 Gaussian window with sigma 1.5 (normalised to sum 1),
    ``K1 = 0.01``, ``K2 = 0.03``, ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2`` with
    ``L = data_range``; local statistics are Gaussian-weighted (population) moments,
    the SSIM map is evaluated only where the window fits entirely inside the image
    ("valid", like Wang's reference ``ssim_index.m``; no automatic downsampling) and
    averaged. Colour images (HxWxC) get one SSIM per channel, and the channel SSIMs are
    averaged (no luminance conversion); HxW images are treated as one channel.
    Needs H, W >= 11.
    """
    a_arr, b_arr, value_range = _image_pair(a, b, data_range)
    if min(a_arr.shape[:2]) < SSIM_WINDOW_SIZE:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW_SIZE}x{SSIM_WINDOW_SIZE}, "
            f"got {a_arr.shape}"
        )
    if a_arr.ndim == 2:
        a_arr, b_arr = a_arr[..., None], b_arr[..., None]
    window = gaussian_window_1d()
    channel_scores = [
        _ssim_channel(a_arr[..., c], b_arr[..., c], value_range, window)
        for c in range(a_arr.shape[2])
    ]
    return float(np.mean(channel_scores))
