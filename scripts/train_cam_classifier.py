"""Train SAAGAN's CAM classifier C on the two domains: ``python scripts/train_cam_classifier.py
--dataroot ./datasets/horse2zebra --name h2z_cam``.

The project's domain classifier (``scripts/train_domain_classifier.py``) with the settings a
class activation map needs: an input size that gives an 8x8 CAM (128 px for the small backbone,
256 px for ResNet-50), a page of CAMs on held-out images, and both CAM kinds' MAE/IoU against
the held-out masks where they exist (the measure of SAAGAN Table 3). It is saved as
``CHECKPOINTS_DIR/NAME/classifier.pt``; train SAAGAN with ``--cam_classifier NAME``.

``--backbone resnet50 --backbone_weights resnet50-0676ba61.pth`` starts from torchvision's
ImageNet weights file and, as the paper does (Sec. 3.1, Table 5: 1, 5 or 10 epochs), trains only
the new 1x1 convolution (``--finetune head``, the default for a pretrained backbone; nothing is
downloaded). Sizes that would give ResNet-50 a CAM smaller than 7x7 are refused.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from models.classifier import cam_resolution_problem  # noqa: E402
from models.classifier_training import classifier_parser, train_classifier  # noqa: E402
from util.errors import run_cli  # noqa: E402

# Input sizes that give each backbone an 8x8 class activation map.
CAM_INPUT_SIZE = {"small": 128, "resnet50": 256}


def main(argv: Sequence[str] | None = None) -> int:
    parser = classifier_parser(__doc__.split("\n\n")[0])
    parser.set_defaults(size=None, cam_page=True, epochs=10)
    args = parser.parse_args(argv)
    if not args.name and not args.out:
        parser.error("--name NAME is required (the classifier is saved as CHECKPOINTS_DIR/NAME/classifier.pt)")
    if args.size is None:
        args.size = CAM_INPUT_SIZE[args.backbone]
    problem = cam_resolution_problem(args.backbone, args.size)
    if problem:
        parser.error(problem)
    return run_cli(lambda: train_classifier(args), "nothing was saved")


if __name__ == "__main__":
    sys.exit(main())
