"""Evaluate a test run: ``python scripts/evaluate.py --results results/h2z_att/test_latest``.

Reads what test.py wrote (``results.json``) and writes, into ``--out`` (default: the results
folder), ``metrics.json``, ``metrics.md`` and ``evaluation.html``. Per direction: FID and
KID x 100 against the real target-domain test set and UAIT's mean KID (Inception features,
as torch-fidelity computes them; needs the standard weights file, never downloaded here),
attention MAE / IoU against ground-truth masks (SAAGAN Eq. 15), background PSNR / L1 and
foreground change, the domain-classifier measures with ``--classifier``, and PSNR / SSIM
against the paired ground truth of aligned data. See evaluation/evaluate.py.

Without the Inception weights (offline machines), FID/KID are marked "not computed" with the
reason in metrics.json and the report, everything else is computed, and the exit status is 0.
Pass ``--inception_weights PATH`` (or put the file in the torch hub cache) for FID/KID; an
explicit ``--inception_weights`` that does not exist is an error (exit 2). ``--no_inception``
skips them on purpose.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

# Running as `python scripts/evaluate.py` puts scripts/ on the path, not the repository root.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from evaluation.evaluate import UAIT_KID, KidProtocol, evaluate_run, inception_features  # noqa: E402
from evaluation.inception import INCEPTION_WEIGHTS_FILENAME, InceptionWeightsMissing  # noqa: E402
from evaluation.report import METRICS_JSON, write_report  # noqa: E402
from models.classifier import load_domain_classifier  # noqa: E402
from options.base_options import parse_gpu_ids, select_device  # noqa: E402
from util.checkpoint import atomic_write_text  # noqa: E402
from util.errors import UserError, run_cli  # noqa: E402

# Measures that need something a later evaluation may lack (masks, weights, a classifier).
MEASURE_KEYS = ("fid", "kid_x100", "mean_kid_x100", "attention", "background", "paired", "classifier")

DEFAULT_KID = KidProtocol()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--results", required=True, help="a folder test.py wrote (holding results.json)")
    parser.add_argument("--dataroot", default=None, help="the dataset test.py translated (default: from results.json)")
    parser.add_argument("--out", default=None, help="where to write metrics.json/.md and evaluation.html (default: --results)")
    g = parser.add_argument_group("FID / KID (Inception features)")
    g.add_argument("--inception_weights", default=None,
                   help="the FID Inception weights file (default: looked up in the torch hub cache)")
    g.add_argument("--no_inception", action="store_true", help="skip FID/KID; compute the offline measures only")
    g.add_argument("--kid_subsets", type=int, default=None, help=f"KID subsets (default {DEFAULT_KID.n_subsets})")
    g.add_argument("--kid_subset_size", type=int, default=None,
                   help=f"KID subset size, capped by the set sizes (default {DEFAULT_KID.subset_size})")
    g.add_argument("--kid_protocol", choices=("uait",), default=None,
                   help="uait: 10 subsets of 50 (UAIT Table 1, GuideGAN Table 3)")
    g.add_argument("--seed", type=int, default=0, help="seed of the KID subset sampling")
    parser.add_argument("--classifier", default=None,
                        help="a domain classifier from scripts/train_domain_classifier.py (adds its measures)")
    parser.add_argument("--batch_size", type=int, default=50, help="images per feature batch")
    parser.add_argument("--gpu_ids", type=parse_gpu_ids, default="0",
                        help="GPU id for the networks; -1 for CPU (CPU when CUDA is absent)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    return parser


def kid_protocol(args: argparse.Namespace) -> KidProtocol:
    """The KID subsets from ``--kid_protocol`` or ``--kid_subsets``/``--kid_subset_size``; a clash is an error."""
    if args.kid_protocol == "uait":
        for option, value, wanted in (("--kid_subsets", args.kid_subsets, UAIT_KID.n_subsets),
                                      ("--kid_subset_size", args.kid_subset_size, UAIT_KID.subset_size)):
            if value is not None and value != wanted:
                raise UserError(f"--kid_protocol uait means {UAIT_KID.n_subsets} subsets of {UAIT_KID.subset_size}; "
                                f"drop {option} {value} or --kid_protocol")
        return KidProtocol(UAIT_KID.n_subsets, UAIT_KID.subset_size, args.seed)
    n_subsets = DEFAULT_KID.n_subsets if args.kid_subsets is None else args.kid_subsets
    subset_size = DEFAULT_KID.subset_size if args.kid_subset_size is None else args.kid_subset_size
    if n_subsets < 1 or subset_size < 2:
        raise UserError("--kid_subsets must be >= 1 and --kid_subset_size >= 2")
    return KidProtocol(n_subsets, subset_size, args.seed)


def run(args: argparse.Namespace) -> dict[str, Path]:
    if args.batch_size < 1:
        raise UserError("--batch_size must be >= 1")
    protocol = kid_protocol(args)
    device = str(select_device(args.gpu_ids))
    features, skipped_because = None, "--no_inception"
    if not args.no_inception:
        # Before any other work: a missing weights file should not cost the user a long wait.
        try:
            features = inception_features(args.inception_weights, device)
        except InceptionWeightsMissing as err:
            if args.inception_weights is not None:  # asked for explicitly
                raise InceptionWeightsMissing(f"{err}\n(or pass --no_inception to compute only the measures that "
                                              f"need no downloaded weights)") from None
            skipped_because = f"the Inception weights file {INCEPTION_WEIGHTS_FILENAME} is not on this machine"
            print(f"warning: FID/KID not computed: {err}\nEvery other measure is computed.", file=sys.stderr)
    classifier, info = (None, None)
    if args.classifier:
        classifier, info = load_domain_classifier(args.classifier, device)
    result = evaluate_run(Path(args.results), dataroot=args.dataroot, features=features, classifier=classifier,
                          classifier_info=info, classifier_path=args.classifier, kid=protocol,
                          batch_size=args.batch_size, progress=not args.no_progress, skipped_because=skipped_because)
    out = Path(args.out or args.results)
    keep_previous_measures(out / METRICS_JSON, result)
    paths = write_report(result, Path(args.results), out)
    for path in paths.values():
        print(f"wrote {path}")
    return paths


def keep_previous_measures(path: Path, result: dict) -> None:
    """When this evaluation lacks measures the previous ``metrics.json`` had (no masks this time,
    say), keep that file as ``metrics.previous.json`` and say so."""
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text())
    except ValueError:
        return
    lost = sorted({f"{name}: {key}" for name, entry in previous.get("directions", {}).items()
                   for key in MEASURE_KEYS if entry.get(key) and not result["directions"].get(name, {}).get(key)})
    if lost:
        kept = path.with_name("metrics.previous.json")
        atomic_write_text(kept, path.read_text())
        print(f"note: the previous {path.name} had measures this evaluation does not ({', '.join(lost)}); "
              f"it is kept as {kept}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
