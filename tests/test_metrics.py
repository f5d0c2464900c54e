"""Tests for util/metrics.py (FID, KID, attention and image metrics) and util/inception.py.

Every expected value is computed independently here (closed forms, explicit loops,
eigenvalue routes), not by calling the code under test a second time.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from evaluation import metrics
from evaluation.inception import (
    INCEPTION_FEATURE_DIM,
    INCEPTION_WEIGHTS_FILENAME,
    INCEPTION_WEIGHTS_URL,
    FeatureExtractor,
    InceptionWeightsMissing,
    default_weights_path,
    extract_features,
    load_inception_extractor,
)
from util import mask_measures
from util.errors import UserError

# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def random_spd(dim: int, rng: np.random.Generator) -> np.ndarray:
    """A random symmetric positive-definite matrix."""
    factor = rng.normal(size=(dim, dim))
    return factor @ factor.T + 0.1 * np.eye(dim)


def fid_by_eigenvalues(mu1, sigma1, mu2, sigma2) -> float:
    """Independent FID: Tr((S1 S2)^1/2) = sum sqrt(eig(S1^1/2 S2 S1^1/2)), all via eigh."""
    evals1, evecs1 = np.linalg.eigh(sigma1)
    sqrt_sigma1 = evecs1 @ np.diag(np.sqrt(np.clip(evals1, 0, None))) @ evecs1.T
    inner = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def mmd2_double_loop(x: np.ndarray, y: np.ndarray, degree=3, gamma=None, coef0=1.0) -> float:
    """Unbiased MMD^2 by explicit sums over pairs (O(n^2) Python loops)."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma

    def k(u, v):
        return (gamma * float(np.dot(u, v)) + coef0) ** degree

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


# --------------------------------------------------------------------------------------
# FID
# --------------------------------------------------------------------------------------


def test_frechet_distance_diagonal_closed_form():
    mu1, mu2 = np.array([1.0, -2.0, 0.5]), np.array([0.0, 1.0, 0.5])
    var1, var2 = np.array([4.0, 1.0, 0.25]), np.array([1.0, 9.0, 0.25])
    # diagonal covariances: ||mu1 - mu2||^2 + sum (sqrt(v1) - sqrt(v2))^2
    expected = (1 + 9 + 0) + ((2 - 1) ** 2 + (1 - 3) ** 2 + 0)
    got = metrics.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert got == pytest.approx(expected, abs=1e-10)
    assert expected == 15


def test_frechet_distance_matches_eigenvalue_route_for_full_covariances():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    sigma1, sigma2 = random_spd(6, rng), random_spd(6, rng)
    expected = fid_by_eigenvalues(mu1, sigma1, mu2, sigma2)
    assert metrics.frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8)
    assert metrics.frechet_distance(mu1, sigma1, mu1, sigma1) == pytest.approx(0.0, abs=1e-8)


def test_fid_from_features_matches_independent_computation():
    rng = np.random.default_rng(2)
    feats1 = rng.normal(size=(40, 8))
    feats2 = rng.normal(loc=0.5, scale=1.5, size=(55, 8))
    expected = fid_by_eigenvalues(feats1.mean(0), np.cov(feats1.T), feats2.mean(0), np.cov(feats2.T))
    assert metrics.fid_from_features(feats1, feats2) == pytest.approx(expected, rel=1e-8)
    assert metrics.fid_from_features(torch.from_numpy(feats1), torch.from_numpy(feats2)) == pytest.approx(expected, rel=1e-8)


def test_fid_from_gaussian_samples_approaches_analytic_value():
    mu1, mu2 = np.array([0.0, 1.0, -1.0]), np.array([0.5, 0.5, 0.0])
    sigma1 = np.array([[1.0, 0.3, 0.0], [0.3, 2.0, 0.4], [0.0, 0.4, 0.5]])
    sigma2 = np.array([[0.6, -0.2, 0.1], [-0.2, 1.0, 0.0], [0.1, 0.0, 1.5]])
    analytic = fid_by_eigenvalues(mu1, sigma1, mu2, sigma2)
    n = 50_000
    rng = np.random.default_rng(3)
    estimate = metrics.fid_from_features(rng.multivariate_normal(mu1, sigma1, n), rng.multivariate_normal(mu2, sigma2, n))
    # Tolerance: over 200 seeds at n = 20,000 the estimate's std was 0.028 (bias 0.002,
    # O(d/n)); the std scales as 1/sqrt(n), i.e. ~0.018 at n = 50,000. 5 std -> 0.09.
    assert estimate == pytest.approx(analytic, abs=0.09)
    assert analytic > 2.0  # the tolerance is small relative to the value being checked


def test_fid_regularises_when_sqrtm_is_not_finite(monkeypatch):
    rng = np.random.default_rng(4)
    mu1, mu2 = rng.normal(size=3), rng.normal(size=3)
    sigma1, sigma2 = random_spd(3, rng), random_spd(3, rng)
    real_sqrtm = scipy.linalg.sqrtm
    calls = []

    def sqrtm_failing_once(matrix):
        calls.append(matrix)
        if len(calls) == 1:
            return np.full_like(matrix, np.nan)
        return real_sqrtm(matrix)

    monkeypatch.setattr(scipy.linalg, "sqrtm", sqrtm_failing_once)
    eps = 1e-2
    got = metrics.frechet_distance(mu1, sigma1, mu2, sigma2, eps=eps)
    assert len(calls) == 2
    offset = eps * np.eye(3)
    diff = mu1 - mu2
    trace_term = np.trace(real_sqrtm((sigma1 + offset) @ (sigma2 + offset)).real)
    expected = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_term
    assert got == pytest.approx(expected, rel=1e-10)


def test_fid_rejects_large_imaginary_part():
    # sigma1 = -I is not a covariance; sqrtm(-I) = i*I has imaginary part 1.
    with pytest.raises(ValueError, match="imaginary"):
        metrics.frechet_distance(np.zeros(2), -np.eye(2), np.zeros(2), np.eye(2))


def test_fid_works_with_fewer_samples_than_dimensions():
    rng = np.random.default_rng(5)
    value = metrics.fid_from_features(rng.normal(size=(10, 64)), rng.normal(size=(12, 64)))
    assert np.isfinite(value) and value > 0


# --------------------------------------------------------------------------------------
# KID
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma, coef0, degree", [(None, 1.0, 3), (0.3, 0.5, 2)])
def test_unbiased_mmd2_matches_double_loop(gamma, coef0, degree):
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(7, 4)), rng.normal(loc=0.3, size=(9, 4))
    expected = mmd2_double_loop(x, y, degree=degree, gamma=gamma, coef0=coef0)
    got = metrics.kid_unbiased_mmd2(x, y, degree=degree, gamma=gamma, coef0=coef0)
    assert got == pytest.approx(expected, rel=1e-10)


def test_kid_subsets_are_reproducible_per_seed():
    rng = np.random.default_rng(7)
    feats1, feats2 = rng.normal(size=(80, 5)), rng.normal(size=(90, 5))
    kwargs = {"n_subsets": 8, "subset_size": 20}
    first = metrics.kid_subset_values(feats1, feats2, seed=11, **kwargs)
    again = metrics.kid_subset_values(feats1, feats2, seed=11, **kwargs)
    other = metrics.kid_subset_values(feats1, feats2, seed=12, **kwargs)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    assert metrics.kid_from_features(feats1, feats2, seed=11, **kwargs) == (
        pytest.approx(first.mean()),
        pytest.approx(first.std()),
    )


def test_kid_subsets_are_drawn_without_replacement():
    # With subset_size == set size, sampling without replacement gives a permutation of
    # each set, so every subset value equals the full-set estimate.
    rng = np.random.default_rng(8)
    feats1, feats2 = rng.normal(size=(15, 3)), rng.normal(size=(15, 3))
    full = metrics.kid_unbiased_mmd2(feats1, feats2)
    values = metrics.kid_subset_values(feats1, feats2, n_subsets=5, subset_size=15)
    np.testing.assert_allclose(values, full, rtol=1e-10)


def test_kid_caps_subset_size_and_reports_it():
    rng = np.random.default_rng(9)
    feats1, feats2 = rng.normal(size=(30, 3)), rng.normal(size=(45, 3))
    with pytest.warns(UserWarning, match="effective subset size = 30"):
        metrics.kid_from_features(feats1, feats2, n_subsets=3, subset_size=1000)
    assert metrics.kid_effective_subset_size(30, 45, 1000) == 30
    assert metrics.kid_effective_subset_size(300, 450, 100) == 100
    with pytest.raises(ValueError):
        metrics.kid_effective_subset_size(1, 45, 100)


def test_kid_near_zero_for_same_distribution_and_positive_for_shift():
    rng = np.random.default_rng(10)
    dim = 8
    same1, same2 = rng.normal(size=(400, dim)), rng.normal(size=(400, dim))
    shifted = rng.normal(loc=0.5, size=(400, dim))
    kwargs = {"n_subsets": 20, "subset_size": 200, "seed": 0}
    mean_same, std_same = metrics.kid_from_features(same1, same2, **kwargs)
    mean_shift, std_shift = metrics.kid_from_features(same1, shifted, **kwargs)
    assert abs(mean_same) < 3 * std_same
    assert mean_shift > 5 * std_shift
    assert mean_shift > 10 * abs(mean_same)


def test_kid_agrees_with_torch_fidelity():
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
    rng = np.random.default_rng(11)
    feats1, feats2 = rng.normal(size=(60, 16)), rng.normal(0.2, 1.1, size=(70, 16))
    reference = metric_kid.kid_features_to_metric(
        torch.from_numpy(feats1),
        torch.from_numpy(feats2),
        kid_subsets=10,
        kid_subset_size=50,
        rng_seed=5,
        verbose=False,
    )
    mean, std = metrics.kid_from_features(feats1, feats2, n_subsets=10, subset_size=50, seed=5)
    assert mean == pytest.approx(reference["kernel_inception_distance_mean"], rel=1e-9)
    assert std == pytest.approx(reference["kernel_inception_distance_std"], rel=1e-9)


def test_mean_kid_averages_target_and_source():
    rng = np.random.default_rng(12)
    fake = rng.normal(loc=0.2, size=(60, 4))
    target = rng.normal(loc=0.5, size=(70, 4))
    source = rng.normal(loc=0.0, size=(80, 4))
    kwargs = {"n_subsets": 6, "subset_size": 50, "seed": 3}
    result = metrics.mean_kid(fake, target, source, **kwargs)
    target_values = metrics.kid_subset_values(fake, target, **kwargs)
    source_values = metrics.kid_subset_values(fake, source, **kwargs)
    assert result["kid_target"] == pytest.approx(target_values.mean())
    assert result["kid_source"] == pytest.approx(source_values.mean())
    assert result["mean_kid"] == pytest.approx((result["kid_target"] + result["kid_source"]) / 2)
    assert result["mean_kid_std"] == pytest.approx(((target_values + source_values) / 2).std())
    assert result["kid_target_std"] == pytest.approx(target_values.std())
    assert (result["subset_size_target"], result["subset_size_source"], result["n_subsets"]) == (
        50,
        50,
        6,
    )


def test_kid_for_report_scales_by_100():
    assert metrics.kid_for_report(0.0123, 0.0004) == pytest.approx((1.23, 0.04))


# --------------------------------------------------------------------------------------
# attention maps
# --------------------------------------------------------------------------------------


def test_attention_mae_hand_computed():
    att = np.array([[1.0, 0.5], [0.0, 0.25]])
    mask = np.array([[1, 1], [0, 0]], dtype=np.uint8)
    # |1-1| + |0.5-1| + |0-0| + |0.25-0| = 0.75 over 4 pixels
    assert mask_measures.attention_mae(att, mask) == pytest.approx(0.1875)
    assert mask_measures.attention_mae(att[None], mask.astype(bool)) == pytest.approx(0.1875)
    assert mask_measures.attention_mae(torch.from_numpy(att), mask * 255) == pytest.approx(0.1875)


def test_attention_mae_resizes_mask_to_attention_size():
    att = np.array([[1.0, 0.5], [0.0, 0.25]])
    big_mask = np.kron(np.array([[1, 1], [0, 0]], dtype=np.uint8), np.ones((4, 4), dtype=np.uint8)) * 255
    assert big_mask.shape == (8, 8)
    assert mask_measures.attention_mae(att, big_mask) == pytest.approx(0.1875)


def test_attention_mae_rejects_values_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mask_measures.attention_mae(np.array([[1.5, 0.0]]), np.array([[1, 0]]))


def test_attention_iou_hand_computed_and_empty_cases():
    att = np.array([[0.9, 0.6], [0.2, 0.5]])  # > 0.5 -> [[1, 1], [0, 0]]; 0.5 itself is out
    mask = np.array([[1, 0], [1, 0]])
    assert mask_measures.attention_iou(att, mask) == pytest.approx(1 / 3)
    assert mask_measures.attention_iou(att, mask, threshold=0.1) == pytest.approx(2 / 4)
    empty_att, empty_mask = np.zeros((2, 2)), np.zeros((2, 2), dtype=np.uint8)
    assert mask_measures.attention_iou(empty_att, empty_mask) == 1.0
    assert mask_measures.attention_iou(empty_att, mask) == 0.0
    assert mask_measures.attention_iou(att, empty_mask) == 0.0


# --------------------------------------------------------------------------------------
# PSNR / L1 (global and masked)
# --------------------------------------------------------------------------------------


def masked_example():
    """a = black 2x2 RGB; b differs by 30 at the foreground pixel, by 5 at one background one."""
    a = np.zeros((2, 2, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 0] = 30
    b[1, 1] = 5
    mask = np.array([[1, 0], [0, 0]], dtype=np.uint8)
    return a, b, mask


def test_masked_psnr_and_l1_hand_computed():
    a, b, mask = masked_example()
    background_mse = (3 * 5**2) / 9  # 3 background pixels x 3 channels
    assert metrics.masked_psnr(a, b, mask) == pytest.approx(10 * math.log10(255**2 / background_mse))
    assert metrics.masked_psnr(a, b, mask, region="foreground") == pytest.approx(10 * math.log10(255**2 / 900))
    assert metrics.masked_l1(a, b, mask) == pytest.approx((3 * 5 / 9) / 255)
    assert metrics.masked_l1(a, b, mask, region="foreground") == pytest.approx(30 / 255)


def test_masked_metrics_float_images_match_uint8():
    a, b, mask = masked_example()
    a_float, b_float = a / 255.0, b / 255.0
    assert metrics.masked_psnr(a_float, b_float, mask) == pytest.approx(metrics.masked_psnr(a, b, mask))
    assert metrics.masked_l1(a_float, b_float, mask) == pytest.approx(metrics.masked_l1(a, b, mask))


def test_masked_metrics_identical_and_empty_regions():
    a, b, mask = masked_example()
    b[1, 1] = 0  # background now identical
    assert metrics.masked_psnr(a, b, mask) == math.inf
    assert metrics.masked_l1(a, b, mask) == 0.0
    all_foreground = np.ones((2, 2), dtype=bool)
    assert math.isnan(metrics.masked_psnr(a, b, all_foreground))
    assert math.isnan(metrics.masked_l1(a, b, all_foreground))
    assert math.isnan(metrics.masked_l1(a, b, ~all_foreground, region="foreground"))


def test_masked_metrics_reject_mismatched_mask():
    a, b, _ = masked_example()
    with pytest.raises(ValueError, match="mask shape"):
        metrics.masked_psnr(a, b, np.zeros((3, 3), dtype=bool))


def test_psnr_hand_computed_and_data_range():
    a = np.zeros((4, 4, 3))
    b = np.full((4, 4, 3), 0.1)
    assert metrics.psnr(a, b) == pytest.approx(20.0)  # MSE 0.01, L = 1
    assert metrics.psnr(a, a) == math.inf
    with pytest.raises(ValueError, match="data_range"):
        metrics.psnr(a - 1.0, b)  # float outside [0, 1] needs an explicit range
    assert metrics.psnr(a - 1.0, b - 1.0, data_range=2.0) == pytest.approx(10 * math.log10(4 / 0.01))


# --------------------------------------------------------------------------------------
# SSIM
# --------------------------------------------------------------------------------------


def ssim_by_window_loop(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Independent SSIM: explicit 2-D Gaussian weights at every valid window position."""
    offsets = np.arange(11) - 5
    weights = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * 1.5**2))
    weights /= weights.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    channel_means = []
    for c in range(x.shape[2]):
        values = []
        for i in range(x.shape[0] - 10):
            for j in range(x.shape[1] - 10):
                wx, wy = x[i : i + 11, j : j + 11, c], y[i : i + 11, j : j + 11, c]
                mx, my = np.sum(weights * wx), np.sum(weights * wy)
                vx = np.sum(weights * (wx - mx) ** 2)
                vy = np.sum(weights * (wy - my) ** 2)
                cxy = np.sum(weights * (wx - mx) * (wy - my))
                values.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
        channel_means.append(np.mean(values))
    return float(np.mean(channel_means))


def test_ssim_matches_explicit_window_loop():
    rng = np.random.default_rng(13)
    x = rng.random((16, 15, 3))
    y = np.clip(x + rng.normal(scale=0.1, size=x.shape), 0, 1)
    assert metrics.ssim(x, y) == pytest.approx(ssim_by_window_loop(x, y, 1.0), rel=1e-9)


def test_ssim_identical_is_one_and_symmetric():
    rng = np.random.default_rng(14)
    x = rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)
    y = rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)
    assert metrics.ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    assert metrics.ssim(x, y) == pytest.approx(metrics.ssim(y, x), abs=1e-12)
    assert metrics.ssim(x, y) < 0.1  # independent noise images share no structure
    assert metrics.ssim(x, y) == pytest.approx(metrics.ssim(x / 255.0, y / 255.0), rel=1e-9)


def test_ssim_constant_images_closed_form():
    # zero variance: the contrast-structure term is C2 / C2 = 1, luminance term remains
    a, b = np.full((16, 16), 0.2), np.full((16, 16), 0.6)
    c1 = 0.01**2
    assert metrics.ssim(a, b) == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1))


def test_ssim_decreases_with_noise():
    rng = np.random.default_rng(15)
    clean = np.clip(np.add.outer(np.linspace(0, 1, 32), np.linspace(0, 0.5, 32)), 0, 1)
    noise = rng.normal(size=clean.shape)
    scores = [metrics.ssim(clean, np.clip(clean + s * noise, 0, 1)) for s in (0.01, 0.05, 0.2)]
    assert 1.0 > scores[0] > scores[1] > scores[2]


def test_ssim_rejects_tiny_images():
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(np.zeros((8, 8)), np.zeros((8, 8)))


# --------------------------------------------------------------------------------------
# Inception: weights lookup and feature extraction
# --------------------------------------------------------------------------------------


@pytest.fixture
def no_downloads(monkeypatch):
    """Make any attempt to download weights fail loudly."""
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    def refuse(*args, **kwargs):
        raise AssertionError("a weights download was attempted")

    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)  # ignore any set_dir()
    assert Path(torch.hub.get_dir()).is_relative_to(tmp_path)
    return tmp_path / "torch_home"


@pytest.fixture(scope="module")
def standin_inception_weights(tmp_path_factory) -> Path:
    """STAND-IN weights: a randomly initialised torch-fidelity Inception state dict.

    Used only to exercise the loading code path offline; features from it mean nothing.
    """
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    class RandomInitInception(tf_inception.FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):  # keep the random init
            return None

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tf_inception, "load_state_dict_from_url", lambda *a, **k: None)
        model = RandomInitInception("inception-v3-compat", ["2048"])
    path = tmp_path_factory.mktemp("standin") / INCEPTION_WEIGHTS_FILENAME
    torch.save(model.state_dict(), path)
    return path


def test_weights_constants_match_installed_torch_fidelity():
    tf_inception = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    assert tf_inception.URL_INCEPTION_V3 == INCEPTION_WEIGHTS_URL
    assert INCEPTION_WEIGHTS_URL.endswith("/" + INCEPTION_WEIGHTS_FILENAME)


def test_missing_weights_raise_with_file_name_url_and_places(empty_torch_home, no_downloads):
    with pytest.raises(InceptionWeightsMissing) as caught:
        load_inception_extractor()
    message = str(caught.value)
    assert INCEPTION_WEIGHTS_FILENAME in message
    assert INCEPTION_WEIGHTS_URL in message
    assert "--inception_weights" in message
    assert str(empty_torch_home / "hub" / "checkpoints" / INCEPTION_WEIGHTS_FILENAME) in message
    assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, UserError)


def test_missing_explicit_weights_path_raises(tmp_path, no_downloads):
    with pytest.raises(InceptionWeightsMissing, match="nothing_here.pth"):
        load_inception_extractor(tmp_path / "nothing_here.pth")


def test_unreadable_weights_file_is_a_user_error(tmp_path, no_downloads):
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"")
    with pytest.raises(UserError, match="could not load Inception weights"):
        load_inception_extractor(broken)


def test_weights_found_in_torch_hub_cache(empty_torch_home, no_downloads, standin_inception_weights):
    cached = default_weights_path()
    cached.parent.mkdir(parents=True)
    cached.symlink_to(standin_inception_weights)
    extractor = load_inception_extractor()  # STAND-IN weights, random init
    images = torch.randint(0, 256, (2, 3, 40, 32), dtype=torch.uint8)
    features = extractor(images)
    assert features.shape == (2, INCEPTION_FEATURE_DIM)
    assert features.dtype == torch.float32


class ChannelMeanStandIn:
    """STAND-IN extractor (not Inception): per-channel mean intensity, records batch sizes."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        assert images.dtype == torch.uint8 and images.shape[1] == 3
        self.batch_sizes.append(images.shape[0])
        return images.float().mean(dim=(2, 3))


class TinyConvStandIn(torch.nn.Module):
    """STAND-IN network (not Inception): conv + global pooling to 8-d features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, kernel_size=3)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.conv(images.float() / 255.0).mean(dim=(2, 3))


@pytest.fixture
def image_files(tmp_path) -> tuple[list[Path], np.ndarray]:
    """RGB, grayscale, RGBA and a differently sized RGB file, with expected channel means."""
    rgb = np.zeros((20, 20, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30
    gray = np.full((20, 20), 77, dtype=np.uint8)
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 40, 50, 60, 0
    other_size = np.full((16, 24, 3), 200, dtype=np.uint8)
    arrays = [(rgb, "RGB"), (gray, "L"), (rgba, "RGBA"), (other_size, "RGB")]
    paths = []
    for index, (array, mode) in enumerate(arrays):
        path = tmp_path / f"img_{index}.png"
        Image.fromarray(array, mode=mode).save(path)
        paths.append(path)
    expected = np.array([[10, 20, 30], [77, 77, 77], [40, 50, 60], [200, 200, 200]], dtype=np.float32)
    return paths, expected


def test_extract_features_handles_gray_rgba_and_mixed_sizes(image_files):
    paths, expected = image_files
    stand_in = ChannelMeanStandIn()
    assert isinstance(stand_in, FeatureExtractor)
    features = extract_features(paths, stand_in, batch_size=3, progress=False)
    np.testing.assert_allclose(features, expected)  # alpha dropped, gray replicated, order kept
    assert stand_in.batch_sizes == [3, 1]
    stand_in = ChannelMeanStandIn()
    extract_features(paths, stand_in, batch_size=4, progress=False)
    assert stand_in.batch_sizes == [3, 1]  # the 16x24 image cannot share a batch


def test_extract_features_with_tiny_network(image_files):
    paths, _ = image_files
    network = TinyConvStandIn().eval()
    features = extract_features(paths, network, batch_size=2, progress=False)
    assert features.shape == (4, 8) and features.dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = extract_features(paths[::-1], network, batch_size=50, progress=False)
    np.testing.assert_allclose(again[::-1], features, rtol=1e-5, atol=1e-6)


def test_extract_features_rejects_empty_input():
    with pytest.raises(ValueError, match="no images"):
        extract_features([], ChannelMeanStandIn(), progress=False)
