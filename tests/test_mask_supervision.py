"""Learning the attention from a few masks, for every model with a blending mask: the seed-chosen
subset, the BCE on the images that have a mask only, the discriminators' masked view, and the
refusal for guidegan."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from data import create_dataset
from data.datasets import mask_subset
from models import create_model
from models.attention import mask_bce
from models.classifier import DomainClassifier, classifier_checkpoint
from options import parse_train_options
from tests.conftest import make_unaligned
from tests.test_precision import unpaired_batch
from util.checkpoint import atomic_save
from util.errors import UserError

TINY = ["--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks", "--crop_size", "32", "--load_size", "32",
        "--pool_size", "0"]
# Every model with a blending mask, with the options that make it tiny.
MODELS = {
    "aggan": [],
    "attentiongan": ["--n_attention", "3"],
    "attentiongan_I": ["--scheme", "I"],
    "uait": ["--ngf_attention", "4"],
    "saagan": [],
}


def model_name(key: str) -> str:
    return key.split("_I")[0]


def build(key: str, tmp_path: Path, *extra: str):
    args = ["--model", model_name(key), *TINY, *MODELS[key], *extra]
    if key == "saagan":
        torch.manual_seed(1)
        classifier = DomainClassifier(input_size=32, width=4, n_layers=3, n_classes=2)
        atomic_save(classifier_checkpoint(classifier, {}, {"accuracy": 0.9}, {"A": "a", "B": "b"}),
                    tmp_path / "c" / "classifier.pt")
        args += ["--checkpoints_dir", str(tmp_path), "--cam_classifier", "c"]
    torch.manual_seed(0)
    model = create_model(model_name(key), parse_train_options(args), torch.device("cpu"))
    model.setup()
    model.set_mode(True)
    return model


def batch_with_masks(has_a: list[bool], has_b: list[bool]) -> dict:
    batch = unpaired_batch(batch_size=len(has_a))
    batch["A_has_mask"], batch["B_has_mask"] = torch.tensor(has_a), torch.tensor(has_b)
    for side, has in (("A", has_a), ("B", has_b)):
        batch[f"{side}_mask"] = batch[f"{side}_mask"] * torch.tensor(has, dtype=torch.float32).view(-1, 1, 1, 1)
    return batch


# --------------------------------------------------------------------------- the subset
def test_mask_subset_is_seed_chosen_counted_and_the_same_when_rebuilt(tmp_path):
    paths = [tmp_path / f"{i:03d}.png" for i in range(250)]
    masks = {p: p.with_suffix(".mask.png") for p in paths if p.name != "007.png"}  # one image has no mask file

    def opt(**kw):
        return parse_train_options(["--model", "attentiongan", "--attention_prior", "masks", *TINY,
                                    *[x for k, v in kw.items() for x in (f"--{k}", str(v))]])

    two_percent = mask_subset(paths, masks, opt(mask_fraction=0.02), 0)
    assert len(two_percent) == 5 and set(two_percent) <= set(masks)  # 2% of 250
    assert mask_subset(paths, masks, opt(mask_fraction=0.02), 0) == two_percent  # deterministic
    assert mask_subset(paths, masks, opt(mask_fraction=0.02, seed=1), 0) != two_percent
    assert mask_subset(paths, masks, opt(mask_fraction=0.02), 1) != two_percent  # the other domain draws its own
    assert len(mask_subset(paths, masks, opt(max_masks=3), 0)) == 3
    assert len(mask_subset(paths, masks, opt(mask_fraction=0.1, max_masks=20), 0)) == 20
    assert mask_subset(paths, masks, opt(), 0) is masks  # no options: every mask
    assert mask_subset(paths, masks, opt(mask_fraction=0), 0) == {}


def test_the_dataset_drops_the_other_masks_and_says_how_many(tmp_path, capsys):
    data = make_unaligned(tmp_path / "data", n_a=10, n_b=10)
    args = ["--dataroot", str(data), "--model", "attentiongan", "--attention_prior", "masks", "--max_masks", "3",
            *TINY, "--num_threads", "0", "--load_size", "36", "--crop_size", "32"]
    opt = parse_train_options(args)
    dataset = create_dataset(opt)
    assert "masks used for training: A: 3 of 10 trainA images (10 have a mask file)" in capsys.readouterr().out
    assert opt.masks_used.startswith("A: 3 of 10") and "B: 3 of 10" in opt.masks_used
    with_mask = {i for i in range(10) if dataset[(1, i)]["A_has_mask"]}
    assert len(with_mask) == 3
    again = create_dataset(parse_train_options(args))  # a resumed run builds the same subset
    assert {i for i in range(10) if again[(1, i)]["A_has_mask"]} == with_mask
    for i in set(range(10)) - with_mask:
        assert float(dataset[(1, i)]["A_mask"].sum()) == 0


def test_replay_draws_only_images_of_the_subset_with_their_masks_and_the_same_on_a_rebuild(tmp_path):
    data = make_unaligned(tmp_path / "data", n_a=10, n_b=10)
    args = ["--dataroot", str(data), "--model", "attentiongan", "--attention_prior", "masks", "--max_masks", "2",
            "--mask_replay", *TINY, "--num_threads", "0", "--load_size", "32", "--crop_size", "32", "--no_flip"]
    dataset = create_dataset(parse_train_options(args))
    masked = {i: dataset[(1, i)] for i in range(10) if dataset[(1, i)]["A_has_mask"]}
    assert len(masked) == 2
    replayed = [dataset[(epoch, i)] for epoch in (1, 2) for i in range(10)]
    for sample in replayed:
        # the replayed image is one of the two with a mask, and comes with that image's mask
        match = [m for m in masked.values() if torch.equal(m["A"], sample["A_replay"])]
        assert match and torch.equal(match[0]["A_mask"], sample["A_replay_mask"])
    assert len({float(s["A_replay"].sum()) for s in replayed}) == 2  # both get drawn
    again = create_dataset(parse_train_options(args))  # a resumed run replays the same images
    assert all(torch.equal(again[(2, i)]["A_replay"], dataset[(2, i)]["A_replay"]) for i in range(10))
    assert "A_replay" not in create_dataset(parse_train_options([a for a in args if a != "--mask_replay"]))[(1, 0)]


def test_replay_jitter_recolours_the_replayed_object_only_and_the_same_on_a_rebuild(tmp_path):
    data = make_unaligned(tmp_path / "data", n_a=6, n_b=6)
    args = ["--dataroot", str(data), "--model", "aggan", "--attention_prior", "masks", "--max_masks", "2",
            "--mask_replay", *TINY, "--num_threads", "0", "--load_size", "32", "--crop_size", "32"]
    plain = create_dataset(parse_train_options(args))
    jittered = create_dataset(parse_train_options([*args, "--replay_jitter", "0.5"]))
    changed = 0
    for i in range(6):
        a, b = plain[(1, i)], jittered[(1, i)]
        mask = b["A_replay_mask"].bool().expand_as(b["A_replay"])
        assert torch.equal(a["A_replay_mask"], b["A_replay_mask"]) and torch.equal(a["A"], b["A"])
        assert torch.equal(a["A_replay"][~mask], b["A_replay"][~mask])  # the background is untouched
        changed += int(not torch.allclose(a["A_replay"][mask], b["A_replay"][mask], atol=0.02))
        assert b["A_replay"].min() >= -1 and b["A_replay"].max() <= 1
    assert changed >= 5  # the object is recoloured (a draw near the identity may leave one alike)
    again = create_dataset(parse_train_options([*args, "--replay_jitter", "0.5"]))  # a resumed run: the same colours
    assert all(torch.equal(again[(2, i)]["B_replay"], jittered[(2, i)]["B_replay"]) for i in range(6))


def test_jitter_object_keeps_grey_images_in_range_and_is_off_at_zero():
    import numpy as np

    from data.transforms import jitter_object

    image, mask = torch.rand(1, 8, 8) * 2 - 1, (torch.rand(1, 8, 8) > 0.5).float()
    assert jitter_object(image, mask, 0.0, np.random.default_rng(0)) is image
    grey = jitter_object(image, mask, 1.0, np.random.default_rng(0))
    assert grey.shape == image.shape and grey.min() >= -1 and grey.max() <= 1
    assert torch.equal(grey[mask == 0], image[mask == 0]) and not torch.equal(grey, image)


def test_replay_jitter_needs_the_replay_and_is_refused_with_the_object_view():
    with pytest.raises(UserError, match="--replay_jitter needs --attention_prior masks --mask_replay"):
        parse_train_options(["--model", "aggan", *TINY, "--attention_prior", "masks", "--replay_jitter", "0.5"])
    with pytest.raises(UserError, match="--replay_jitter 2.0: must be in"):
        parse_train_options(["--model", "aggan", *TINY, "--attention_prior", "masks", "--mask_replay",
                             "--replay_jitter", "2"])
    with pytest.raises(UserError, match="would take the recoloured"):
        parse_train_options(["--model", "attentiongan", *TINY, "--attention_prior", "masks", "--mask_replay",
                             "--d_mask", "objects", "--replay_jitter", "0.5"])


# --------------------------------------------------------------------------- the loss
def test_images_without_a_mask_add_no_mask_loss():
    attention = torch.rand(2, 1, 8, 8, requires_grad=True)
    masks = (torch.rand(2, 1, 8, 8) > 0.5).float()
    loss = mask_bce(attention, masks, torch.tensor([True, False]))
    assert loss.item() == pytest.approx(F.binary_cross_entropy(attention[:1], masks[:1]).item(), rel=1e-5)
    loss.backward()
    assert attention.grad[1].abs().sum() == 0 and attention.grad[0].abs().sum() > 0
    none = mask_bce(attention, masks, torch.tensor([False, False]))
    assert none.item() == 0.0 and none.requires_grad


def test_the_mask_term_joins_the_generator_objective_outside_the_curriculum(tmp_path):
    model = build("aggan", tmp_path, "--attention_prior", "masks", "--lambda_mask", "2")
    model.on_epoch_start(1)  # r = 0.01: the mask term must not be scaled by it
    losses = model.train_step(batch_with_masks([True], [False]))
    expected = 2 * mask_bce(model.att_A.detach(), model.given_masks["A"][0], torch.tensor([True]))
    assert losses["mask_A"] == pytest.approx(float(expected), rel=1e-4)
    assert losses["mask_B"] == 0.0
    assert "mask_A" not in build("aggan", tmp_path).train_step(batch_with_masks([True], [True]))


# --------------------------------------------------------------------------- the discriminators' view
def capture(runner) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    runner.network.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    return seen


@pytest.mark.parametrize("key", ["attentiongan", "saagan", "uait"])
def test_given_masks_show_the_discriminators_zeros_outside_the_mask(tmp_path, key):
    model = build(key, tmp_path, "--attention_prior", "masks", "--d_mask", "given")
    seen = capture(model.networks["D_A"])
    batch = batch_with_masks([True, False], [True, True])
    model.on_epoch_start(1)
    model.train_step(batch)
    real_B, given_B = batch["B"], batch["B_mask"]
    judged_reals = [x for x in seen if torch.equal(x, real_B * given_B)]
    assert judged_reals, "D_A judged real B through its given mask"
    assert (judged_reals[0][given_B.expand_as(real_B) == 0] == 0).all()
    # the fakes: the first A image through its given mask, the second (no mask) through G's own attention
    threshold = model.opt.tau if key == "uait" else 0.5
    own = (model.att_A[1:].detach() >= threshold).float()
    fakes = [x for x in seen if x.shape[0] == 2 and not torch.equal(x, real_B * given_B)]
    assert fakes and all((x[0][batch["A_mask"][0].expand(3, -1, -1) == 0] == 0).all() for x in fakes)
    assert all((x[1][own[0].expand(3, -1, -1) == 0] == 0).all() for x in fakes)


@pytest.mark.parametrize("key", ["attentiongan", "uait"])
def test_warmup_shows_images_without_a_mask_as_zeros_then_through_the_own_attention(tmp_path, key, capsys):
    model = build(key, tmp_path, "--attention_prior", "masks", "--d_mask", "given", "--d_mask_warmup", "1")
    seen = capture(model.networks["D_A"])
    batch = batch_with_masks([True, False], [False, True])
    real_B, given_B = batch["B"], batch["B_mask"]
    for epoch in (1, 2):
        seen.clear()
        model.on_epoch_start(epoch)
        model.train_step(batch)
        # real B: the first image has no mask, the second is seen through its given mask
        reals = [x for x in seen if torch.equal(x[1], real_B[1] * given_B[1])]
        assert reals
        threshold = model.opt.tau if key == "uait" else 0.5
        own_view = real_B[0] * (model.att_B[0].detach() >= threshold).float()
        if epoch == 1:
            assert all(torch.equal(x[0], torch.zeros_like(x[0])) for x in reals)
            # the fake of the A image without a mask is zeros too: no adversarial signal from it
            fakes = [x for x in seen if not any(x is real for real in reals)]
            assert fakes and all(torch.equal(x[1], torch.zeros_like(x[1])) for x in fakes)
        else:
            assert own_view.abs().sum() > 0 and all(torch.equal(x[0], own_view) for x in reals)
    said = capsys.readouterr().out
    assert "from epoch 1, the discriminators see images without a mask as zeros" in said
    assert "from epoch 2, the discriminators see images without a mask through the model's own attention" in said


def test_warmup_needs_the_given_view_and_a_count():
    with pytest.raises(UserError, match="--d_mask_warmup 2 needs --d_mask given"):
        parse_train_options(["--model", "attentiongan", *TINY, "--attention_prior", "masks", "--d_mask_warmup", "2"])
    with pytest.raises(UserError, match="--d_mask_warmup -1: must be >= 0"):
        parse_train_options(["--model", "attentiongan", *TINY, "--attention_prior", "masks", "--d_mask", "given",
                             "--d_mask_warmup", "-1"])


def with_replay(batch: dict) -> dict:
    """``batch`` plus one replayed image per side with a mask (as ``--mask_replay`` supplies)."""
    torch.manual_seed(5)
    replay = batch_with_masks([True] * len(batch["A"]), [True] * len(batch["B"]))
    batch.update({f"{side}_replay{suffix}": replay[f"{side}{suffix}"] for side in "AB" for suffix in ("", "_mask")})
    return batch


@pytest.mark.parametrize("key", ["aggan", "attentiongan", "saagan"])
def test_object_view_judges_replayed_objects_real_and_lets_the_adversarial_loss_shape_the_attention(tmp_path, key):
    model = build(key, tmp_path, "--attention_prior", "masks", "--mask_replay", "--d_mask", "objects")
    seen = capture(model.networks["D_A"])
    batch = with_replay(batch_with_masks([False], [False]))
    model.on_epoch_start(1)
    losses = model.train_step(batch)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    replay_B, replay_mask_B = batch["B_replay"], batch["B_replay_mask"]
    assert any(torch.equal(x, replay_B * replay_mask_B) for x in seen), "D_A judged the replayed B object real"
    assert not any(torch.equal(x, batch["B"]) for x in seen), "the batch's whole real B is never judged"
    fake_view = model.fake_B.detach() * model.att_A.detach()
    assert any(torch.allclose(x, fake_view, atol=1e-6) for x in seen), "the fake is seen through its soft attention"
    # the adversarial loss on the view alone (the fake image detached) reaches the attention network
    model.set_input(batch)
    model.forward()
    attention = next(name for name in ("A_A", "G_A") if name in model.networks)
    model.networks[attention].zero_grad()
    view_only = model.networks["D_A"](model.fake_B.detach() * model.view_mask("A", model.att_A))
    model.gan_loss(view_only, True).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.networks[attention].parameters())


def test_object_view_needs_the_replay_and_is_refused_for_uait():
    with pytest.raises(UserError, match="--d_mask objects needs --mask_replay"):
        parse_train_options(["--model", "attentiongan", *TINY, "--attention_prior", "masks", "--d_mask", "objects"])
    with pytest.raises(UserError, match="UAIT thresholds"):
        parse_train_options(["--model", "uait", *TINY, "--attention_prior", "masks", "--mask_replay",
                             "--d_mask", "objects"])


# --------------------------------------------------------------------------- every model, every option
@pytest.mark.parametrize("key", sorted(MODELS))
@pytest.mark.parametrize("extra", [[], ["--mask_fraction", "0.5"], ["--max_masks", "1"], ["--d_mask", "given"]])
def test_every_model_with_a_mask_trains_a_step_with_each_option(tmp_path, key, extra):
    model = build(key, tmp_path, "--attention_prior", "masks", *extra)
    model.on_epoch_start(1)
    before = [p.detach().clone() for p in model.networks["G_A"].parameters()]
    losses = model.train_step(batch_with_masks([True, False], [False, True]))
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.networks["G_A"].parameters()))
    if key != "saagan":  # saagan's masks enter its Eq. (6) as the prior instead
        assert losses["mask_A"] > 0 and losses["mask_B"] > 0
    else:
        assert "mask_A" not in losses and torch.equal(model.prior_A[0], model.given_masks["A"][0][0])


@pytest.mark.parametrize("key", sorted(MODELS))
def test_replayed_masks_train_the_attention_when_the_batch_has_none(tmp_path, key):
    model = build(key, tmp_path, "--attention_prior", "masks", "--mask_replay")
    model.on_epoch_start(1)
    batch = batch_with_masks([False], [False])
    replay = batch_with_masks([True], [True])
    batch.update({f"{side}_replay{suffix}": replay[f"{side}{suffix}"] for side in "AB" for suffix in ("", "_mask")})
    model.set_input(batch)
    model.forward()
    terms = model.supervision_terms()
    assert set(terms) >= {"replay_A", "replay_B"} and all(terms[f"replay_{s}"].item() > 0 for s in "AB")
    assert all(float(terms.get(f"mask_{s}", torch.zeros(())).detach()) == 0 for s in "AB")  # no batch image has a mask
    attention = next(name for name in ("A_A", "G_A") if name in model.networks)
    terms["replay_A"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.networks[attention].parameters())
    losses = build(key, tmp_path, "--attention_prior", "masks", "--mask_replay").train_step(batch)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()) and losses["replay_A"] > 0


@pytest.mark.parametrize("model", ["guidegan", "guidegan_paired"])
def test_guidegan_refuses_masks(model):
    with pytest.raises(UserError, match="no blending mask"):
        parse_train_options(["--model", model, "--attention_prior", "masks", *TINY])


def test_mask_options_without_masks_are_refused():
    for extra in (["--d_mask", "given"], ["--d_mask", "objects"], ["--mask_fraction", "0.1"], ["--mask_replay"]):
        with pytest.raises(UserError, match=f"{extra[0]}.* needs --attention_prior masks"):
            parse_train_options(["--model", "attentiongan", *TINY, *extra])
    with pytest.raises(UserError, match="--mask_fraction 1.5"):
        parse_train_options(["--model", "uait", *TINY, "--attention_prior", "masks", "--mask_fraction", "1.5"])


def test_a_negative_mask_gradient_frequency_is_refused():
    with pytest.raises(UserError, match="--mask_gradient_freq -1"):
        parse_train_options(["--model", "aggan", *TINY, "--mask_gradient_freq", "-1"])
