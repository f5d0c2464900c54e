"""SAAGAN: the ternary prior, its losses by hand, the classifier's CAM, and a classifier + saagan run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models import create_model, networks
from models.classifier import RESNET50_WEIGHTS_FILES, DomainClassifier, classifier_checkpoint, normalised_cam
from models.saagan_model import attention_loss, ternary_mask
from options import parse_train_options
from tests.conftest import make_unaligned, run_script
from tests.test_precision import unpaired_batch
from util.checkpoint import atomic_save
from util.errors import UserError


def test_ternary_mask_at_and_around_both_thresholds():
    cam = torch.tensor([0.0, 0.19, 0.2, 0.21, 0.5, 0.69, 0.7, 0.71, 1.0])
    assert ternary_mask(cam, 0.2, 0.7).tolist() == [0.0, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0]


def test_attention_loss_ignores_the_uncertain_pixels():
    prediction = torch.tensor([0.9, 0.2, 0.6, 0.3], requires_grad=True)
    prior = torch.tensor([1.0, 0.0, 0.5, 0.5])
    loss = attention_loss(prediction, prior)
    by_hand = -(np.log(0.9) + np.log(0.8)) / 2
    assert loss.item() == pytest.approx(by_hand, rel=1e-5)
    loss.backward()
    assert prediction.grad[2] == 0 and prediction.grad[3] == 0
    assert prediction.grad[0] < 0 and prediction.grad[1] > 0


def test_weighted_adversarial_loss_by_hand_with_the_mask_resized_to_the_patch_map():
    prediction = torch.tensor([[[[2.0, -1.0], [0.5, 0.0]]]])
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :2] = 1.0  # top-left quarter -> top-left patch only
    mask[..., 2:, 2:] = 0.5
    weight = F.interpolate(mask, size=(2, 2), mode="bilinear", align_corners=False)
    assert weight.flatten().tolist() == [1.0, 0.0, 0.0, 0.5]
    bce_real = F.softplus(-prediction)  # -log sigmoid(p)
    expected = (bce_real * weight).mean()
    loss = networks.GANLoss("vanilla")(prediction, True, weight=mask)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert networks.GANLoss("vanilla")(prediction, False, target=0.3).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(prediction, torch.full_like(prediction, 0.3)).item())


def hand_made_classifier() -> DomainClassifier:
    """A classifier whose backbone is the identity, so the CAM is the 1x1 head applied to the pixels."""
    model = DomainClassifier(input_size=16, width=4, n_layers=1, n_classes=2)
    model.trunk = nn.Identity()
    model.head = nn.Conv2d(3, 2, 1)
    with torch.no_grad():
        model.head.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]]).view(2, 3, 1, 1))
        model.head.bias.copy_(torch.tensor([0.0, 1.0]))
    return model.eval()


def test_cam_of_a_hand_made_network():
    model = hand_made_classifier()
    x = torch.zeros(1, 3, 16, 16)
    x[0, 0, :8] = 1.0  # channel 0 (class 0's weight) bright in the top half
    x[0, 2, :, :4] = -1.0  # channel 2 (class 1's weight 2, bias 1) dark in the left quarter
    cam0 = model.cam(x, torch.tensor([0]))
    cam1 = model.cam(x, torch.tensor([1]))
    assert torch.equal(cam0[0, 0], x[0, 0]) and torch.allclose(cam1[0, 0], 2 * x[0, 2] + 1)
    assert torch.allclose(model(x), torch.stack([x[0, 0].mean(), (2 * x[0, 2] + 1).mean()])[None])
    normalised = normalised_cam(model, x, torch.tensor([1]))
    assert normalised.shape == (1, 1, 16, 16) and normalised.min() == 0 and normalised.max() == 1
    assert torch.all(normalised[0, 0, :, :4] == 0) and torch.all(normalised[0, 0, :, 4:] == 1)


def saagan(tmp_path, *extra):
    from models.classifier import classifier_checkpoint
    from util.checkpoint import atomic_save

    torch.manual_seed(1)
    model = DomainClassifier(input_size=32, width=4, n_layers=3, n_classes=2)
    atomic_save(classifier_checkpoint(model, {}, {"accuracy": 0.5}, {"A": "a", "B": "b"}), tmp_path / "c" / "classifier.pt")
    opt = parse_train_options(["--model", "saagan", "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG",
                               "resnet_6blocks", "--crop_size", "32", "--load_size", "32", "--pool_size", "0",
                               "--checkpoints_dir", str(tmp_path), "--cam_classifier", "c", *extra])
    torch.manual_seed(0)
    model = create_model("saagan", opt, torch.device("cpu"))
    model.setup()
    model.set_mode(True)
    return model


def test_paper_defaults_and_spectral_norm(tmp_path):
    opt = parse_train_options(["--model", "saagan"])
    assert (opt.lambda_cycle, opt.lambda_attention, opt.lambda_smooth, opt.fake_label) == (8.0, 1.0, 5.0, 0.3)
    assert (opt.theta_low, opt.theta_high, opt.gan_mode, opt.lr, opt.n_epochs, opt.n_epochs_decay) == (
        0.2, 0.7, "vanilla", 0.0002, 100, 100)
    model = saagan(tmp_path)
    convs = [m for m in model.networks["D_A"].modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(hasattr(m, "weight_orig") for m in convs)  # spectral norm on every conv
    first = list(model.networks["D_A"].network.model)[:3]
    assert isinstance(first[1], nn.BatchNorm2d)  # conv-BN-LeakyReLU from the first block on
    assert not model.networks["C"].network.training and "C" not in model.optimizers  # frozen


def test_fake_augmentation_reaches_the_discriminator_with_label_03(tmp_path):
    model = saagan(tmp_path)
    calls = []
    real_loss = model.gan_loss.forward

    def record(prediction, target_is_real, target=None, weight=None):
        calls.append((target_is_real, target, weight is not None))
        return real_loss(prediction, target_is_real, target, weight)

    model.gan_loss.forward = record
    seen = []
    model.networks["D_A"].network.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    model.train_step(unpaired_batch())
    assert (False, 0.3, True) in calls
    augmented = model.prior_A * model.out_A.contents[:, 0] + (1 - model.prior_A) * model.real_A
    # Algorithm 1, D first: real, pooled fake, augmented fake; then the G step's fake
    assert torch.allclose(seen[2], augmented, atol=1e-6) and torch.allclose(seen[3], model.fake_B, atol=1e-6)
    calls.clear()
    without = saagan(tmp_path, "--no_fake_augmentation")
    without.gan_loss.forward = record
    without.train_step(unpaired_batch())
    assert all(target is None for _, target, _ in calls)


def test_supervised_prior_uses_masks_and_counts_fallbacks(tmp_path):
    model = saagan(tmp_path, "--attention_prior", "masks")
    batch = unpaired_batch(batch_size=2)
    batch["A_has_mask"] = torch.tensor([True, False])
    model.train_step(batch)
    assert torch.equal(model.prior_A[0], batch["A_mask"][0])
    assert torch.equal(model.prior_A[1], ternary_mask(model.cam_A[1]))
    assert any("1 image(s) had no ground-truth mask" in m for m in model.epoch_diagnostics())
    assert model.prior_fallbacks == 0  # counted per epoch


def test_resnet50_backbone_needs_its_weights_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub_home"))
    with pytest.raises(UserError, match=RESNET50_WEIGHTS_FILES[0]):
        DomainClassifier(64, n_classes=2, backbone="resnet50", backbone_weights=None)
    with pytest.raises(UserError, match="missing.pth does not exist"):
        DomainClassifier(64, n_classes=2, backbone="resnet50", backbone_weights=str(tmp_path / "missing.pth"))
    import torchvision

    torch.manual_seed(3)
    imagenet = torchvision.models.resnet50(weights=None)
    path = tmp_path / RESNET50_WEIGHTS_FILES[0]
    torch.save(imagenet.state_dict(), path)
    model = DomainClassifier(64, n_classes=2, backbone="resnet50", backbone_weights=str(path))
    assert torch.equal(model.trunk[1].weight, imagenet.conv1.weight) and model.backbone_weights == str(path)
    assert model(torch.rand(1, 3, 64, 64) * 2 - 1).shape == (1, 2)
    assert model.cam(torch.rand(1, 3, 64, 64), torch.tensor([1])).shape == (1, 1, 2, 2)


def test_classifier_then_saagan_train_resume_and_test(tmp_path):
    data = make_unaligned(tmp_path / "data", n_a=6, n_b=6, size=(40, 36))
    classifier = run_script("scripts/train_cam_classifier.py", "--dataroot", data, "--name", "cam", "--checkpoints_dir",
                            tmp_path / "ckpt", "--size", "32", "--n_layers", "3", "--width", "8", "--epochs", "3",
                            "--batch_size", "4", "--gpu_ids", "-1", "--no_progress", "--cam_images", "2")
    assert classifier.returncode == 0, classifier.stderr[-3000:]
    assert "held-out accuracy on the test folders" in classifier.stdout
    assert "CAM of A against its masks (" in classifier.stdout and "difference MAE" in classifier.stdout
    assert (tmp_path / "ckpt" / "cam" / "cam_page" / "index.html").exists()
    run_args = ["--dataroot", data, "--checkpoints_dir", tmp_path / "ckpt", "--model", "saagan", "--gpu_ids", "-1",
                "--ngf", "4", "--netG", "resnet_6blocks", "--crop_size", "32", "--no_progress", "--name", "sa"]
    common = [*run_args, "--ndf", "4", "--load_size", "36", "--num_threads", "0", "--display_id", "0",
              "--print_freq", "2", "--display_freq", "4", "--n_epochs_decay", "0", "--cam_classifier", "cam"]
    first = run_script("train.py", *common, "--n_epochs", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = run_script("train.py", *common, "--n_epochs", "2", "--continue_train")
    assert resumed.returncode == 0 and "at epoch 2, position 0" in resumed.stdout, resumed.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "ckpt" / "sa" / "loss_log.jsonl").read_text().splitlines()]
    assert {"attention_A", "cycle_A", "smooth", "G_A", "D_A"} <= set(records[-1]["losses"])
    test = run_script("test.py", *run_args, "--results_dir", tmp_path / "res")
    assert test.returncode == 0, test.stderr[-3000:]
    html = (tmp_path / "res" / "sa" / "test_latest" / "index.html").read_text()
    for name in ("real_A", "fake_B", "rec_A", "attention_A", "cam_A", "prior_A", "cam_B", "prior_B"):
        assert f"_{name}.png" in html, name


def test_without_a_classifier_saagan_trains_one_first(tmp_path):
    data = make_unaligned(tmp_path / "data", n_a=4, n_b=4, size=(40, 36))
    result = run_script("train.py", "--dataroot", data, "--checkpoints_dir", tmp_path / "ckpt", "--model", "saagan",
                        "--name", "auto", "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks",
                        "--crop_size", "32", "--load_size", "36", "--num_threads", "0", "--display_id", "0", "--no_progress",
                        "--n_epochs", "1", "--n_epochs_decay", "0", "--max_iters", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no --cam_classifier given: training one first" in result.stdout
    assert (tmp_path / "ckpt" / "auto_cam" / "classifier.pt").exists()


def test_algorithm_1_updates_d_before_g_and_the_other_models_g_first(tmp_path):
    model = saagan(tmp_path)
    order = []
    real_minimize = model.minimize
    model.minimize = lambda name, losses: (order.append(name), real_minimize(name, losses))[1]
    model.train_step(unpaired_batch())
    assert order == ["D", "G"]
    opt = parse_train_options(["--model", "attentiongan", "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG",
                               "resnet_6blocks", "--n_attention", "3"])
    other = create_model("attentiongan", opt, torch.device("cpu"))
    other.setup()
    order.clear()
    real_other = other.minimize
    other.minimize = lambda name, losses: (order.append(name), real_other(name, losses))[1]
    other.train_step(unpaired_batch())
    assert order == ["G", "D"]


def test_difference_cam_is_own_minus_other_and_feeds_the_prior(tmp_path):
    model = hand_made_classifier()
    x = torch.rand(1, 3, 16, 16)
    own = model.cam(x, torch.tensor([1]))
    other = model.cam(x, torch.tensor([0]))
    assert torch.allclose(model.cam(x, torch.tensor([1]), "difference"), own - other)
    assert torch.allclose(model.cam(x, torch.tensor([0]), "difference"), other - own)
    difference = saagan(tmp_path, "--cam", "difference")
    difference.train_step(unpaired_batch())
    classifier = difference.networks["C"].network
    expected = normalised_cam(classifier, difference.real_A, torch.tensor([0]), "difference")
    assert torch.allclose(difference.cam_A, expected)
    assert not torch.allclose(difference.cam_A, normalised_cam(classifier, difference.real_A, torch.tensor([0])))


def test_two_class_softmax_never_trains_the_sum_of_the_class_weights():
    """Why ``--cam difference`` exists: the cross-entropy's gradients on the two rows of the 1x1
    head cancel, so ``w_A + w_B`` (half of each own-class CAM) stays at its random start."""
    torch.manual_seed(0)
    model = DomainClassifier(input_size=16, width=4, n_layers=2, n_classes=2)
    start = model.head.weight.detach().clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(20):
        x, labels = torch.rand(4, 3, 16, 16) * 2 - 1, torch.tensor([0, 1, 0, 1])
        loss = F.cross_entropy(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    moved = model.head.weight.detach()
    assert (moved - start).abs().max() > 1e-2  # the difference w_A - w_B trained
    assert torch.allclose(moved.sum(0), start.sum(0), atol=1e-5)  # the sum did not


def test_cam_classifier_trains_only_the_head_of_a_pretrained_backbone(tmp_path, monkeypatch):
    import torchvision

    from models.classifier import load_domain_classifier
    from models.classifier_training import classifier_parser, train_classifier

    data = make_unaligned(tmp_path / "data", n_a=4, n_b=4, size=(40, 36))
    torch.manual_seed(3)
    imagenet = torchvision.models.resnet50(weights=None)
    weights = tmp_path / RESNET50_WEIGHTS_FILES[0]
    torch.save(imagenet.state_dict(), weights)
    out = tmp_path / "cam" / "classifier.pt"
    common = ["--dataroot", str(data), "--backbone", "resnet50", "--backbone_weights", str(weights), "--size", "224",
              "--epochs", "1", "--batch_size", "4", "--gpu_ids", "-1", "--no_progress", "--out", str(out)]
    train_classifier(classifier_parser().parse_args(common))
    model, info = load_domain_classifier(out)
    assert info["options"]["finetune"] == "head"  # the default for a pretrained backbone
    trunk = dict(model.trunk.named_parameters())
    assert torch.equal(trunk["1.weight"], imagenet.conv1.weight) and torch.equal(trunk["8.2.conv3.weight"],
                                                                                  imagenet.layer4[2].conv3.weight)
    buffers = dict(model.trunk.named_buffers())
    assert torch.equal(buffers["2.running_mean"], imagenet.bn1.running_mean)  # batch-norm statistics frozen too
    with pytest.raises(UserError, match="--finetune all"):
        train_classifier(classifier_parser().parse_args(["--dataroot", str(data), "--finetune", "head", "--size", "32",
                                                         "--n_layers", "3", "--gpu_ids", "-1", "--no_progress",
                                                         "--out", str(tmp_path / "x.pt")]))


def test_cam_script_refuses_a_resnet50_cam_smaller_than_7x7(tmp_path, capsys):
    from scripts.train_cam_classifier import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--dataroot", str(tmp_path), "--name", "c", "--backbone", "resnet50", "--size", "128"])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "4x4" in error and "--size 224" in error


def test_a_classifier_with_swapped_domains_is_refused_and_a_chance_one_warned_about(tmp_path, capsys):
    data = make_unaligned(tmp_path / "data", n_a=4, n_b=4)
    torch.manual_seed(1)
    classifier = DomainClassifier(input_size=32, width=4, n_layers=3, n_classes=2)
    swapped = {"A": str(data / "trainB"), "B": str(data / "trainA")}
    atomic_save(classifier_checkpoint(classifier, {}, {"accuracy": 0.9}, swapped), tmp_path / "swapped" / "classifier.pt")
    args = ["--model", "saagan", "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks", "--crop_size",
            "32", "--load_size", "32", "--pool_size", "0", "--checkpoints_dir", str(tmp_path), "--dataroot", str(data)]
    with pytest.raises(UserError, match="other way round"):
        create_model("saagan", parse_train_options([*args, "--cam_classifier", "swapped"]), torch.device("cpu"))
    with pytest.raises(UserError, match="train_cam_classifier.py"):
        create_model("saagan", parse_train_options([*args, "--cam_classifier", "missing"]), torch.device("cpu"))
    # a classifier that always says "B": right on half of the images
    right = {"A": str(data / "trainA"), "B": str(data / "trainB")}
    with torch.no_grad():
        classifier.head.weight.zero_()
        classifier.head.bias.copy_(torch.tensor([0.0, 5.0]))
    atomic_save(classifier_checkpoint(classifier, {}, {"accuracy": 0.5}, right), tmp_path / "chance" / "classifier.pt")
    model = create_model("saagan", parse_train_options([*args, "--cam_classifier", "chance"]), torch.device("cpu"))
    model.setup()
    capsys.readouterr()
    for _ in range(model.CLASSIFIER_CHECK_IMAGES // 4):
        model.train_step(unpaired_batch(batch_size=2))
    assert "right on only 50%" in capsys.readouterr().out
