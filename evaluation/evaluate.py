"""One evaluation for every model: the measures ``scripts/evaluate.py`` reports for a test run.

Per direction (``AtoB``/``BtoA`` in the dataroot's domain letters, see :mod:`evaluation.translations`):

* distribution measures on features of any :class:`evaluation.inception.FeatureExtractor` (the
  standard one: torch-fidelity's FID Inception-v3, 2048-d pool features):
  FID (Heusel et al. 2017) and KID x 100 (Binkowski et al. 2018) between the translated
  images and the real target-domain set, and UAIT's *mean KID* (Mejjati et al. 2018, Table 1;
  GuideGAN Table 3): the average of KID against the target and against the source set;
* attention MAE (SAAGAN Eq. 15) and IoU at 0.5 of each saved attention map against the
  ground-truth mask of its input;
* background preservation: PSNR and L1 between input and output outside the mask, and the
  foreground change (L1 inside it);
* with a domain classifier (:mod:`evaluation.domain_classifier`): the fraction of translations it
  assigns to the target domain and a KID on its penultimate features (named as such);
* for aligned data: PSNR and SSIM (Wang et al. 2004) against the paired ground truth.

Inputs and outputs are compared on the PNGs test.py saved (same size); ground-truth masks are
resized (nearest) to that size. Real reference sets are loaded as RGB and resized (bicubic,
as the test-time preprocessing does) to the translated images' size. The numeric core is
:mod:`evaluation.metrics`; this module only feeds it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import torch
from PIL import Image
from tqdm import tqdm

from data.image_folder import load_rgb, mask_from_image
from evaluation import metrics
from evaluation.domain_classifier import ClassifierFeatures, class_probabilities
from evaluation.inception import INCEPTION_WEIGHTS_FILENAME, FeatureExtractor, load_inception_extractor
from evaluation.translations import DirectionGroup, MaskRef, RealSet, RunTranslations, Translation, group_translations
from models.classifier import DomainClassifier
from util import mask_measures
from util.errors import UserError

METRICS_FORMAT_VERSION = 1
IOU_THRESHOLD = 0.5
#: SSIM's 11x11 window needs images at least this large.
SSIM_MIN_SIDE = metrics.SSIM_WINDOW_SIZE


@dataclass(frozen=True)
class KidProtocol:
    """How KID subsets are drawn: ``n_subsets`` rounds of ``subset_size`` (capped by the set sizes)."""

    n_subsets: int = 100
    subset_size: int = 1000
    seed: int = 0

    @property
    def name(self) -> str:
        if (self.n_subsets, self.subset_size) == (10, 50):
            return "uait (10 subsets of 50)"
        if (self.n_subsets, self.subset_size) == (100, 1000):
            return "torch-fidelity default (100 subsets of 1000)"
        return f"custom ({self.n_subsets} subsets of {self.subset_size})"


UAIT_KID = KidProtocol(n_subsets=10, subset_size=50)


@dataclass(frozen=True)
class DistributionFeatures:
    """A feature extractor for FID/KID and an honest description of it.

    ``standard`` is True only for the FID Inception network with its standard weights; any
    other extractor (a test's stand-in) makes every report label the numbers as such.
    """

    extractor: FeatureExtractor
    network: str
    weights: str | None
    standard: bool


def inception_features(weights_path: str | Path | None, device: str = "cpu") -> DistributionFeatures:
    """The standard FID Inception-v3 (raises :class:`evaluation.inception.InceptionWeightsMissing` without weights)."""
    from evaluation.inception import resolve_weights_path

    path = resolve_weights_path(weights_path)
    return DistributionFeatures(load_inception_extractor(path, device),
                                "torch-fidelity inception-v3-compat, 2048-d pool features", str(path), True)


# --------------------------------------------------------------------------- reading pictures
def read_rgb(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """An image as ``H x W x 3`` uint8, resized (bicubic) to ``size`` = (w, h) if it differs."""
    image = load_rgb(Path(path))
    if size is not None and image.size != tuple(size):
        image = image.resize(tuple(size), Image.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def read_attention(path: Path) -> np.ndarray:
    """A saved attention map (gray PNG) as ``H x W`` float in [0, 1]."""
    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def read_mask(ref: MaskRef, shape: tuple[int, int]) -> np.ndarray:
    """A ground-truth mask as ``H x W`` bool at ``shape``, nearest-resized; a pair mask is cut to its half."""
    with Image.open(ref.path) as image:
        mask = mask_from_image(image, ref.path)
    width = mask.shape[1]
    if ref.half is not None and ref.pair_width and width == ref.pair_width and ref.pair_width // 2 != width:
        half = ref.pair_width // 2
        left = 0 if ref.half == "left" else half
        mask = mask[:, left : left + half]
    return mask_measures.resize_mask(mask, shape)


# --------------------------------------------------------------------------- per-image measures
def image_measures(translation: Translation, results_dir: Path) -> dict[str, Any]:
    """The offline measures of one translation (keys absent when not applicable)."""
    output = read_rgb(translation.output_file)
    height, width = output.shape[:2]
    source = read_rgb(translation.input_file)
    resized_from = None
    if source.shape[:2] != (height, width):  # compared at the translation's size, and said so
        resized_from = [source.shape[1], source.shape[0]]
        source = read_rgb(translation.input_file, (width, height))
    record: dict[str, Any] = {
        "id": translation.row_id,
        "source": str(translation.source_path),
        "input": _relative(translation.input_file, results_dir),
        "output": _relative(translation.output_file, results_dir),
        "output_flat": bool(output.min() == output.max()),
    }
    if resized_from is not None:
        record["input_resized_from"] = resized_from
    mask = read_mask(translation.mask, (height, width)) if translation.mask else None
    if mask is not None:
        record["mask"] = str(translation.mask.path)
        if translation.mask.half is not None:
            record["mask_half"], record["mask_pair_width"] = translation.mask.half, translation.mask.pair_width
        record["mask_fraction"] = float(mask.mean())
        record["background_psnr"] = metrics.masked_psnr(source, output, mask, region="background")
        record["background_l1"] = metrics.masked_l1(source, output, mask, region="background")
        record["foreground_l1"] = metrics.masked_l1(source, output, mask, region="foreground")
    if translation.attention_file is not None:
        attention = read_attention(translation.attention_file)
        record["attention"] = _relative(translation.attention_file, results_dir)
        record["attention_mean"] = float(attention.mean())
        if mask is not None:
            record["attention_mae"] = mask_measures.attention_mae(attention, mask)
            record["attention_iou"] = mask_measures.attention_iou(attention, mask, IOU_THRESHOLD)
    if translation.paired_file is not None:
        truth = read_rgb(translation.paired_file, (width, height))
        record["paired"] = _relative(translation.paired_file, results_dir)
        record["paired_psnr"] = metrics.psnr(output, truth)
        if min(height, width) >= SSIM_MIN_SIDE:
            record["paired_ssim"] = metrics.ssim(output, truth)
    return record


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def finite_mean(values: Sequence[float]) -> float | None:
    """Mean of the finite values (PSNR is inf for identical images, nan for an empty region); None if none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _values(records: list[dict[str, Any]], key: str) -> list[float]:
    return [r[key] for r in records if key in r]


def summarise_offline(records: list[dict[str, Any]], has_attention: bool, paired: bool) -> tuple[dict[str, Any], list[str]]:
    """Per-direction aggregates of :func:`image_measures` records, and notes on what is absent."""
    summary: dict[str, Any] = {"attention": None, "background": None, "paired": None}
    notes: list[str] = []
    n_masked = sum("mask" in r for r in records)
    summary["n_without_mask"] = len(records) - n_masked
    if n_masked == 0:
        notes.append("no ground-truth masks (<folder>_mask/) for the inputs: background preservation and attention "
                     "accuracy not computed")
    else:
        if n_masked < len(records):
            notes.append(f"{len(records) - n_masked} of {len(records)} input(s) have no ground-truth mask: the mask "
                         f"measures are over the other {n_masked}")
        psnrs = _values(records, "background_psnr")
        summary["background"] = {
            "n": n_masked,
            "psnr_mean": finite_mean(psnrs),
            "psnr_n_identical": sum(1 for v in psnrs if v == math.inf),
            "psnr_n_no_background": sum(1 for v in psnrs if math.isnan(v)),
            "l1_mean": finite_mean(_values(records, "background_l1")),
            "foreground_l1_mean": finite_mean(_values(records, "foreground_l1")),
        }
        if summary["background"]["psnr_n_identical"]:
            notes.append(f"{summary['background']['psnr_n_identical']} image(s) keep the background exactly "
                         f"(PSNR = inf); the PSNR mean is over the others")
    resized = [r for r in records if "input_resized_from" in r]
    if resized:
        first = resized[0]
        notes.append(f"{len(resized)} of {len(records)} translation(s) differ in size from their input (e.g. "
                     f"{first['output']}: input {first['input_resized_from'][0]}x{first['input_resized_from'][1]}); "
                     f"each input was resized (bicubic) to its translation's size for the background and foreground "
                     f"measures")
    if not has_attention:
        notes.append("the model saves no attention maps: attention MAE/IoU not applicable")
    elif n_masked:
        summary["attention"] = {"n": len(_values(records, "attention_mae")),
                                "mae_mean": finite_mean(_values(records, "attention_mae")),
                                "iou_mean": finite_mean(_values(records, "attention_iou")),
                                "iou_threshold": IOU_THRESHOLD}
    if paired:
        summary["paired"] = {"n": len(_values(records, "paired_psnr")),
                             "psnr_mean": finite_mean(_values(records, "paired_psnr")),
                             "ssim_mean": finite_mean(_values(records, "paired_ssim"))}
    else:
        notes.append("unpaired data: PSNR/SSIM against ground truth not applicable")
    return summary, notes


# --------------------------------------------------------------------------- features
def image_batches(paths: Sequence[Path], size: tuple[int, int], batch_size: int) -> Iterator[torch.Tensor]:
    """``uint8`` batches ``B x 3 x H x W`` of the images at ``paths``, resized to ``size`` = (w, h)."""
    for start in range(0, len(paths), batch_size):
        arrays = [read_rgb(p, size) for p in paths[start:start + batch_size]]
        yield torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def features_of(paths: Sequence[Path], size: tuple[int, int], extractor: FeatureExtractor, batch_size: int,
                desc: str, progress: bool) -> np.ndarray:
    """Features ``(N, D)`` of the images at ``paths`` (resized to ``size``), in order."""
    chunks = []
    with tqdm(total=len(paths), unit="img", desc=desc, disable=not progress, dynamic_ncols=True, leave=False) as bar:
        for batch in image_batches(paths, size, batch_size):
            with torch.no_grad():
                features = extractor(batch)
            if features.ndim != 2 or features.shape[0] != batch.shape[0]:
                raise ValueError(f"feature extractor returned shape {tuple(features.shape)} for {batch.shape[0]} images")
            chunks.append(features.detach().float().cpu().numpy())
            bar.update(batch.shape[0])
    return np.concatenate(chunks, axis=0)


def kid_measures(fake: np.ndarray, target: np.ndarray | None, source: np.ndarray | None,
                 protocol: KidProtocol) -> dict[str, Any]:
    """``kid_x100`` (against the target set) and ``mean_kid_x100`` (UAIT: mean of target and source KIDs)."""
    kwargs = {"n_subsets": protocol.n_subsets, "subset_size": protocol.subset_size, "seed": protocol.seed}
    result: dict[str, Any] = {"kid_x100": None, "mean_kid_x100": None}
    if target is None or min(len(fake), len(target)) < 2:
        return result
    with warnings.catch_warnings():
        # The capped subset size is reported in the result instead of warned about.
        warnings.simplefilter("ignore", UserWarning)
        if source is not None and len(source) >= 2:
            raw = metrics.mean_kid(fake, target, source, **kwargs)
            target_part = _kid_x100(raw["kid_target"], raw["kid_target_std"], raw["subset_size_target"], protocol)
            source_part = _kid_x100(raw["kid_source"], raw["kid_source_std"], raw["subset_size_source"], protocol)
            mean, std = metrics.kid_for_report(raw["mean_kid"], raw["mean_kid_std"])
            result["mean_kid_x100"] = {"mean": mean, "std": std, "target": target_part, "source": source_part}
            result["kid_x100"] = target_part
        else:
            mean, std = metrics.kid_from_features(fake, target, **kwargs)
            size = metrics.kid_effective_subset_size(len(fake), len(target), protocol.subset_size)
            result["kid_x100"] = _kid_x100(mean, std, size, protocol)
    return result


def _kid_x100(mean: float, std: float, subset_size: int, protocol: KidProtocol) -> dict[str, Any]:
    mean100, std100 = metrics.kid_for_report(mean, std)
    return {"mean": mean100, "std": std100, "subset_size": subset_size, "n_subsets": protocol.n_subsets}


class _FeatureCache:
    """Features of real sets, computed once per (extractor, set): AtoB's target is BtoA's source."""

    def __init__(self, size: tuple[int, int], batch_size: int, progress: bool) -> None:
        self.size, self.batch_size, self.progress = size, batch_size, progress
        # Keyed by the extractor object itself (not its id), which also keeps it alive.
        self.cache: dict[tuple[FeatureExtractor, tuple[Path, ...]], np.ndarray] = {}

    def real(self, extractor: FeatureExtractor, real_set: RealSet | None, desc: str) -> np.ndarray | None:
        if real_set is None:
            return None
        key = (extractor, real_set.paths)
        if key not in self.cache:
            self.cache[key] = features_of(real_set.paths, self.size, extractor, self.batch_size, desc, self.progress)
        return self.cache[key]

    def fake(self, extractor: FeatureExtractor, group: DirectionGroup, desc: str) -> np.ndarray:
        paths = [t.output_file for t in group.translations]
        return features_of(paths, self.size, extractor, self.batch_size, desc, self.progress)


def distribution_measures(group: DirectionGroup, features: DistributionFeatures, cache: _FeatureCache,
                          protocol: KidProtocol) -> tuple[dict[str, Any], list[str]]:
    """FID, KID x 100 and mean KID x 100 of one direction on ``features``."""
    notes: list[str] = []
    fake = cache.fake(features.extractor, group, f"{group.name} translations")
    target = cache.real(features.extractor, group.target_set, f"real {group.target_domain}")
    source = cache.real(features.extractor, group.source_set, f"real {group.source_domain}")
    result: dict[str, Any] = {"fid": None}
    if target is not None and len(fake) >= 2 and len(target) >= 2:
        with warnings.catch_warnings():
            # Fewer images than dimensions make the covariances singular; the note below says so.
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            result["fid"] = metrics.fid_from_features(fake, target)
        if min(len(fake), len(target)) < fake.shape[1]:
            notes.append(f"FID from {len(fake)} translations and {len(target)} real images in {fake.shape[1]} dimensions: "
                         f"biased upwards at this size; prefer KID")
    elif target is not None:
        notes.append("FID/KID need at least 2 translations and 2 real images")
    result.update(kid_measures(fake, target, source, protocol))
    if source is None:
        notes.append("no real source-domain set: mean KID not computed")
    return result, notes


def target_class(info: dict[str, Any] | None, domain: str) -> int:
    """The classifier's class index of ``domain`` (its ``domains`` are in class order; A, B by default)."""
    names = list(((info or {}).get("domains") or {"A": None, "B": None}).keys())
    if domain not in names:
        raise UserError(f"the domain classifier knows the classes {names}, not the target domain {domain!r}")
    return names.index(domain)


def classifier_measures(group: DirectionGroup, model: DomainClassifier, cache: _FeatureCache,
                        protocol: KidProtocol, extractor: ClassifierFeatures | None = None,
                        info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Target-domain fraction by the domain classifier, and KID on its penultimate features."""
    extractor = extractor or ClassifierFeatures(model)
    target = target_class(info, group.target_domain)
    paths = [t.output_file for t in group.translations]
    probabilities = torch.cat([class_probabilities(model, b) for b in image_batches(paths, cache.size, cache.batch_size)])
    p_target = probabilities[:, target]
    result: dict[str, Any] = {
        "target_fraction": float((probabilities.argmax(1) == target).float().mean()),
        "target_probability_mean": float(p_target.mean()),
        "real_target_fraction": None,
        "feature_kid_x100": None,
        "feature_kid_note": "KID on the domain classifier's penultimate features, NOT Inception KID; comparable only "
                            "between runs evaluated with the same classifier file",
    }
    if group.target_set is not None:
        real = [class_probabilities(model, b)
                for b in image_batches(list(group.target_set.paths), cache.size, cache.batch_size)]
        result["real_target_fraction"] = float((torch.cat(real).argmax(1) == target).float().mean())
        fake = cache.fake(extractor, group, f"{group.name} classifier features")
        target = cache.real(extractor, group.target_set, f"real {group.target_domain} classifier features")
        result["feature_kid_x100"] = kid_measures(fake, target, None, protocol)["kid_x100"]
    return result


# --------------------------------------------------------------------------- a whole run
def evaluate_translations(run: RunTranslations, *, features: DistributionFeatures | None = None,
                          classifier: DomainClassifier | None = None, classifier_info: dict[str, Any] | None = None,
                          classifier_path: str | None = None, kid: KidProtocol = KidProtocol(), batch_size: int = 50,
                          progress: bool = True, skipped_because: str = "--no_inception") -> dict[str, Any]:
    """Every measure of a run (the content of ``metrics.json``, see ``scripts/evaluate.py``).

    ``features=None`` skips FID/KID (``skipped_because`` says why, in the notes and the meta);
    ``classifier=None`` skips the classifier measures. Any :class:`DistributionFeatures` can be
    passed (tests use a stand-in; the report says so).
    """
    if not any(group.translations for group in run.groups.values()):
        raise UserError(f"{run.results_dir}/results.json lists no translations (no 'fake' pictures)")
    first = next(t for g in run.groups.values() for t in g.translations)
    with Image.open(first.output_file) as image:
        size = image.size
    cache = _FeatureCache(size, batch_size, progress)
    classifier_features = ClassifierFeatures(classifier) if classifier is not None else None
    directions: dict[str, Any] = {}
    for name, group in run.groups.items():
        records = [image_measures(t, run.results_dir)
                   for t in tqdm(group.translations, desc=f"{name} images", unit="img", disable=not progress, leave=False)]
        if records and all(r["output_flat"] for r in records):
            raise UserError(
                f"every {name} translation in {run.results_dir} is one flat colour: the model that made them is broken "
                f"(non-finite weights give black images). Evaluate the results of another checkpoint"
            )
        has_attention = any(t.attention_file is not None for t in group.translations)
        offline, notes = summarise_offline(records, has_attention, any(t.paired_file for t in group.translations))
        entry: dict[str, Any] = {
            "source_domain": group.source_domain,
            "target_domain": group.target_domain,
            "n_images": len(group.translations),
            "repeated_inputs_skipped": group.repeated_inputs_skipped,
            "source_set": group.source_set.description if group.source_set else None,
            "target_set": group.target_set.description if group.target_set else None,
            "n_source_real": len(group.source_set.paths) if group.source_set else 0,
            "n_target_real": len(group.target_set.paths) if group.target_set else 0,
            "fid": None, "kid_x100": None, "mean_kid_x100": None,
            **offline,
            "classifier": None,
        }
        notes = list(group.notes) + notes
        if features is not None:
            distribution, more = distribution_measures(group, features, cache, kid)
            entry.update(distribution)
            notes += more
        else:
            notes.append(f"FID/KID not computed: {skipped_because}")
        if classifier is not None:
            entry["classifier"] = classifier_measures(group, classifier, cache, kid, classifier_features, classifier_info)
            notes += _classifier_dataset_notes(classifier_info, run.dataroot)
        entry["notes"] = notes
        entry["per_image"] = records
        directions[name] = entry
    result = {"format_version": METRICS_FORMAT_VERSION,
              "meta": _meta(run, size, kid, features, classifier_info, classifier_path),
              "directions": directions}
    if features is None:
        result["meta"]["fid_kid_not_computed"] = skipped_because
    result["meta"]["kid"]["effective_subset_size"] = effective_subset_sizes(result)
    return result


def _classifier_dataset_notes(info: dict[str, Any] | None, dataroot: Path) -> list[str]:
    """A warning when the classifier learnt other folders than this dataset's (its A/B may mean something else)."""
    domains = (info or {}).get("domains") or {}
    trained_on = {Path(p).parent for p in domains.values()}
    if trained_on and trained_on != {Path(dataroot).resolve()}:
        return [f"the domain classifier was trained on {', '.join(map(str, sorted(trained_on)))}, not on this dataroot"]
    return []


def _meta(run: RunTranslations, size: tuple[int, int], kid: KidProtocol, features: DistributionFeatures | None,
          classifier_info: dict[str, Any] | None, classifier_path: str | None) -> dict[str, Any]:
    run_meta = {k: run.meta.get(k) for k in ("name", "model", "epoch", "checkpoint_epoch", "phase", "direction", "dataset_mode")}
    return {
        "results_dir": str(run.results_dir.resolve()),
        "run": run_meta,
        "dataroot": str(run.dataroot),
        "image_size": {"width": size[0], "height": size[1]},
        "seed": kid.seed,
        "kid": {"protocol": kid.name, "n_subsets": kid.n_subsets, "subset_size": kid.subset_size},
        "features": None if features is None else {"network": features.network, "weights": features.weights,
                                                   "standard": features.standard},
        "standard_weights_file": INCEPTION_WEIGHTS_FILENAME,
        "classifier": None if classifier_info is None else {
            "path": classifier_path, "architecture": classifier_info.get("architecture"),
            "accuracy": classifier_info.get("accuracy"), "domains": classifier_info.get("domains")},
        "real_sets": (f"real images of the target/source domain's {run.meta.get('phase', 'test')} folder, loaded as RGB "
                      f"and resized (bicubic) to the translated images' size {size[0]}x{size[1]}"),
        "masks": "ground-truth masks resized (nearest) to the saved images' size; 0 = background",
    }


def effective_subset_sizes(result: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The KID subset sizes actually used per direction and reference set (capped by the set sizes)."""
    sizes: dict[str, dict[str, int]] = {}
    for name, entry in result["directions"].items():
        parts = {}
        if entry.get("mean_kid_x100"):
            parts = {"target": entry["mean_kid_x100"]["target"]["subset_size"],
                     "source": entry["mean_kid_x100"]["source"]["subset_size"]}
        elif entry.get("kid_x100"):
            parts = {"target": entry["kid_x100"]["subset_size"]}
        if entry.get("classifier") and entry["classifier"].get("feature_kid_x100"):
            parts["classifier_target"] = entry["classifier"]["feature_kid_x100"]["subset_size"]
        if parts:
            sizes[name] = parts
    return sizes


def evaluate_run(results_dir: Path, *, dataroot: str | Path | None = None, **kwargs: Any) -> dict[str, Any]:
    """Group a test run's translations and evaluate them (keyword arguments of :func:`evaluate_translations`)."""
    return evaluate_translations(group_translations(Path(results_dir), dataroot), **kwargs)
