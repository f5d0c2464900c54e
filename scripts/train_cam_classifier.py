"""Train SAAGAN's CAM classifier C on the two domains: ``python scripts/train_cam_classifier.py
--dataroot ./datasets/horse2zebra --name h2z_cam``.

The project's domain classifier (``scripts/train_domain_classifier.py``) with the settings a
class activation map needs: 128 px input, so the small backbone's CAM is 8x8, a page of CAMs
on held-out images, and the CAM's MAE/IoU against the held-out masks where they exist (the
measure of SAAGAN Table 3). It is saved as ``CHECKPOINTS_DIR/NAME/classifier.pt``; train SAAGAN
with ``--cam_classifier NAME``. ``--backbone resnet50 --backbone_weights resnet50-0676ba61.pth``
starts from torchvision's ImageNet weights file, as the paper does (nothing is downloaded).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from evaluation.classifier_training import classifier_parser, train_classifier  # noqa: E402
from util.errors import run_cli  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    parser = classifier_parser(__doc__.split("\n\n")[0])
    parser.set_defaults(size=128, cam_page=True, epochs=10)
    args = parser.parse_args(argv)
    if not args.name and not args.out:
        parser.error("--name NAME is required (the classifier is saved as CHECKPOINTS_DIR/NAME/classifier.pt)")
    return run_cli(lambda: train_classifier(args), "nothing was saved")


if __name__ == "__main__":
    sys.exit(main())
