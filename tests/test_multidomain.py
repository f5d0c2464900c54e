"""Multi-domain AttentionGAN: label conditioning, StarGAN's losses, the data layout, and a run."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from data import create_dataset
from data.synthetic import make_synthetic_dataset
from models import create_model, networks
from models.attentiongan_multi_model import label_maps
from options import parse_train_options
from tests.conftest import run_script, write_image
from util.errors import UserError

TINY = ["--model", "attentiongan_multi", "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks",
        "--crop_size", "32", "--load_size", "32", "--n_attention", "3", "--num_threads", "0", "--batch_size", "2"]


@pytest.fixture(scope="module")
def three_domains(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("md") / "data", size=32, n_train=4, n_test=3, domains=3,
                                  workers=1, progress=False)


def model_on(data, *extra):
    opt = parse_train_options([*TINY, "--dataroot", str(data), *extra])
    dataset = create_dataset(opt)
    torch.manual_seed(0)
    model = create_model("attentiongan_multi", opt, torch.device("cpu"))
    model.setup()
    model.set_mode(True)
    return model, dataset


def test_label_maps_and_the_generators_joined_input(three_domains):
    maps = label_maps(torch.tensor([2, 0]), 3, torch.zeros(2, 3, 4, 5))
    assert maps.shape == (2, 3, 4, 5)
    assert torch.equal(maps[0, 2], torch.ones(4, 5)) and maps[0, :2].abs().sum() == 0
    assert torch.equal(maps[1, 0], torch.ones(4, 5)) and maps[1, 1:].abs().sum() == 0
    model, dataset = model_on(three_domains)
    seen = []
    first_conv = next(m for m in model.networks["G"].network.encoder.modules() if isinstance(m, nn.Conv2d))
    first_conv.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    model.translate(image, torch.tensor([1, 2]))
    joined = seen[0][..., 3:-3, 3:-3]  # inside the padding
    assert joined.shape[1] == 3 + 3 and torch.equal(joined[:, :3], image)
    assert torch.all(joined[0, 4] == 1) and torch.all(joined[1, 5] == 1) and joined[0, [3, 5]].abs().sum() == 0


@pytest.mark.parametrize("scheme", ["I", "II"])
def test_the_translation_depends_on_the_target_label(three_domains, scheme):
    model, _ = model_on(three_domains, "--scheme", scheme)
    torch.manual_seed(3)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        outputs = [model.translate(image, torch.tensor([d])).image for d in range(3)]
    assert (outputs[0] - outputs[1]).abs().max() > 1e-3 and (outputs[1] - outputs[2]).abs().max() > 1e-3


def test_reflection_padding_and_instance_norm_would_erase_constant_label_maps():
    """Why the conditioned encoder pads with zeros: a constant input channel leaves no trace."""
    torch.manual_seed(0)
    encoder = networks.resnet_encoder(3 + 3, 4, "instance", 1, False, first_padding="reflect")
    image = torch.rand(1, 3, 16, 16)
    labels = [label_maps(torch.tensor([d]), 3, image) for d in range(2)]
    out = [encoder(torch.cat([image, lab], 1)) for lab in labels]
    assert torch.allclose(out[0], out[1], atol=1e-5)
    with pytest.raises(ValueError, match="first_padding"):
        networks.resnet_encoder(3, 4, "instance", 1, False, first_padding="circular")


def test_dataset_layout_names_domains_and_draws_another_target(three_domains):
    _, dataset = model_on(three_domains)
    assert dataset.domains == ["plain", "spotted", "striped"] and len(dataset) == 12
    sample = dataset[(1, 5)]
    assert sample["A_domain"] == 1 and sample["target_domain"] != 1 and sample["A_has_mask"]
    assert sample["A"].shape == (3, 32, 32) and sample["A_mask"].sum() > 0


def test_fewer_than_two_domains_or_an_empty_one_is_an_error(tmp_path):
    write_image(tmp_path / "one" / "train" / "only" / "0.png", torch.zeros(8, 8, 3, dtype=torch.uint8).numpy())
    with pytest.raises(UserError, match="1 domain folder"):
        create_dataset(parse_train_options([*TINY, "--dataroot", str(tmp_path / "one")]))
    (tmp_path / "one" / "train" / "empty").mkdir()
    with pytest.raises(UserError, match="no images .* found in .*empty"):
        create_dataset(parse_train_options([*TINY, "--dataroot", str(tmp_path / "one")]))


def test_classification_losses_by_hand(three_domains):
    model, dataset = model_on(three_domains, "--n_critic", "1")
    batch = torch.utils.data.default_collate([dataset[(1, 0)], dataset[(1, 9)]])
    recorded = {}
    real_ce = F.cross_entropy

    def cross_entropy(logits, target):
        recorded.setdefault("calls", []).append((logits.detach().clone(), target.clone()))
        return real_ce(logits, target)

    import models.attentiongan_multi_model as module

    module.F.cross_entropy = cross_entropy
    try:
        losses = model.train_step(batch)
    finally:
        module.F.cross_entropy = real_ce
    (d_logits, d_target), (g_logits, g_target) = recorded["calls"]
    assert torch.equal(d_target, batch["A_domain"]) and torch.equal(g_target, batch["target_domain"])
    by_hand = -torch.log_softmax(d_logits, 1)[torch.arange(2), d_target].mean()
    assert losses["D_cls"] == pytest.approx(float(by_hand), rel=1e-5)
    assert {"D_real", "D_fake", "D_gp", "G_adv", "G_cls", "G_rec"} <= set(losses)


def test_gradient_penalty_by_hand():
    weight = torch.tensor([3.0, 4.0]).view(1, 1, 1, 2)  # D(x) = w . x: gradient norm 5 everywhere
    penalty = networks.gradient_penalty(lambda x: (x * weight).flatten(1).sum(1, keepdim=True), torch.zeros(4, 1, 1, 2),
                                        torch.ones(4, 1, 1, 2), weight=10.0)
    assert penalty.item() == pytest.approx(10.0 * (5.0 - 1.0) ** 2)


def test_generator_updates_every_n_critic_steps(three_domains):
    model, dataset = model_on(three_domains, "--n_critic", "3")
    batch = torch.utils.data.default_collate([dataset[(1, 0)], dataset[(1, 5)]])
    keys = [set(model.train_step(batch)) for _ in range(4)]
    assert ["G_adv" in k for k in keys] == [True, False, False, True]
    assert model.extra_state() == {"steps": 4}


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_steps_update_the_networks_with_finite_losses(three_domains, precision):
    model, dataset = model_on(three_domains, "--precision", precision, "--n_critic", "1")
    batch = torch.utils.data.default_collate([dataset[(1, 0)], dataset[(1, 5)]])
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in model.networks.items()}
    for _ in range(1 if precision == "bf16" else 20):  # fp16: the scaler skips overflowing steps first
        losses = model.train_step(batch)
        assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
        changed = {name for name, net in model.networks.items()
                   if any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters()))}
        if changed == set(model.networks):
            break
    assert changed == set(model.networks), f"not updated: {set(model.networks) - changed}"
    assert all(p.dtype == torch.float32 for net in model.networks.values() for p in net.parameters())


def test_three_domains_train_resume_test_and_evaluate_per_target(tmp_path, three_domains):
    run_args = ["--dataroot", three_domains, "--checkpoints_dir", tmp_path / "ckpt", "--model", "attentiongan_multi",
                "--gpu_ids", "-1", "--ngf", "4", "--netG", "resnet_6blocks", "--crop_size", "32", "--n_attention", "3",
                "--no_progress", "--name", "md"]
    common = [*run_args, "--ndf", "4", "--load_size", "32", "--num_threads", "0", "--display_id", "0", "--print_freq", "2",
              "--display_freq", "4", "--n_epochs_decay", "0", "--batch_size", "2", "--n_critic", "2"]
    assert run_script("train.py", *common, "--n_epochs", "1").returncode == 0
    resumed = run_script("train.py", *common, "--n_epochs", "2", "--continue_train")
    assert resumed.returncode == 0 and "at epoch 2, position 0" in resumed.stdout, resumed.stderr[-3000:]
    checkpoint = torch.load(tmp_path / "ckpt" / "md" / "latest.pt", weights_only=True)
    assert checkpoint["state"]["extra"] == {"steps": 12} and checkpoint["architecture"]["domain_names"] == [
        "plain", "spotted", "striped"]
    test = run_script("test.py", *run_args, "--results_dir", tmp_path / "res", "--num_test", "0")
    assert test.returncode == 0, test.stderr[-3000:]
    out = tmp_path / "res" / "md" / "test_latest"
    html = (out / "index.html").read_text()
    for name in ("plain", "spotted", "striped"):
        assert f"_fake_to_{name}.png" in html and f"_attention_to_{name}.png" in html
    classifier = run_script("scripts/train_domain_classifier.py", "--dataroot", three_domains, "--out",
                            tmp_path / "cls.pt", "--size", "32", "--n_layers", "3", "--epochs", "2", "--batch_size", "4",
                            "--gpu_ids", "-1", "--no_progress")
    assert classifier.returncode == 0 and "spotted" in classifier.stdout, classifier.stderr[-2000:]
    evaluation = run_script("scripts/evaluate.py", "--results", out, "--no_inception", "--classifier", tmp_path / "cls.pt",
                            "--no_progress")
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    directions = json.loads((out / "metrics.json").read_text())["directions"]
    assert set(directions) == {"to_plain", "to_spotted", "to_striped"}
    assert directions["to_plain"]["n_images"] == 6  # the 3 spotted and 3 striped test images
    for entry in directions.values():
        assert entry["background"]["n"] == entry["n_images"] and entry["attention"]["iou_mean"] is not None
        assert 0 <= entry["classifier"]["target_fraction"] <= 1
