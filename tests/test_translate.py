"""Using trained models: translate.py on folders for every model, exports, and the CycleGAN repository's weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import translate as translate_script
from models import available_models, create_model, networks
from models.cycle_gan_model import convert_released_generator
from options import parse_train_options
from tests.conftest import run_script, write_image
from tests.test_precision import model_options, unpaired_batch
from util.checkpoint import save_training_checkpoint

TINY = ["--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks", "--crop_size", "32", "--load_size", "32",
        "--display_id", "0", "--num_threads", "0"]
MODELS = [name for name in available_models() if name != "test"]


def extra_for(model: str, tmp_path) -> list[str]:
    options = model_options(model, tmp_path)
    own = {"attentiongan": ["--n_attention", "3"], "attentiongan_multi": ["--n_attention", "3"], "uait": ["--ngf_attention", "4"]}
    return options + own.get(model, [])


def trained_run(tmp_path, model: str, *extra: str) -> str:
    """A run of ``model`` after two training steps, saved as CHECKPOINTS/<model>/latest.pt."""
    opt = parse_train_options(["--model", model, *TINY, *extra_for(model, tmp_path), "--name", model, "--checkpoints_dir",
                               str(tmp_path / "ckpt"), *extra])
    batch = unpaired_batch(batch_size=2)
    if model == "attentiongan_multi":
        opt.domain_names = ["plain", "spotted", "striped"]
        batch.update({"A_domain": torch.tensor([0, 2]), "target_domain": torch.tensor([1, 0])})
    torch.manual_seed(0)
    instance = create_model(model, opt, torch.device("cpu"))
    instance.setup()
    instance.set_mode(True)
    for _ in range(2):
        instance.train_step(batch)
    save_training_checkpoint(tmp_path / "ckpt" / model / "latest.pt", instance, opt, {"epoch": 2, "position": 0,
                                                                                        "total_iters": 4})
    return model


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    write_image(tmp_path / "in" / "wide.png", rng.integers(0, 255, (37, 50, 3), dtype=np.uint8))
    write_image(tmp_path / "in" / "sub" / "tall.jpg", rng.integers(0, 255, (41, 30, 3), dtype=np.uint8))
    write_image(tmp_path / "in" / "gray.png", rng.integers(0, 255, (32, 32), dtype=np.uint8))
    return tmp_path / "in"


@pytest.mark.parametrize("model", MODELS)
def test_every_model_translates_a_folder_keeping_sizes_and_names(tmp_path, photos, model):
    trained_run(tmp_path, model)
    args = ["--name", model, "--checkpoints_dir", str(tmp_path / "ckpt"), "--input", str(photos), "--output",
            str(tmp_path / "out"), "--gpu_ids", "-1", "--num_threads", "0", "--no_progress", "--save_masks", "--batch_size", "2"]
    if model == "attentiongan_multi":
        args += ["--target_domain", "striped"]
    assert translate_script.main(args) == 0
    for name, size in (("wide.png", (50, 37)), ("sub/tall.jpg", (30, 41)), ("gray.png", (32, 32))):
        with Image.open(tmp_path / "out" / name) as image:
            assert image.size == size, (model, name)
    attention = model not in ("cycle_gan", "pix2pix", "guidegan", "guidegan_paired")
    assert (tmp_path / "out" / "wide_attention.png").exists() == attention


def test_translation_equals_the_models_own_forward(tmp_path, photos):
    trained_run(tmp_path, "attentiongan")
    args = translate_script.build_parser().parse_args(["--name", "attentiongan", "--checkpoints_dir", str(tmp_path / "ckpt"),
                                                       "--input", str(photos), "--output", str(tmp_path / "o"),
                                                       "--gpu_ids", "-1", "--direction", "BtoA"])
    module, opt, _ = translate_script.load_translator(args)
    checkpoint = torch.load(tmp_path / "ckpt" / "attentiongan" / "latest.pt", weights_only=True)
    reference = create_model("attentiongan", opt, torch.device("cpu"))
    reference.load_networks(checkpoint["state"]["networks"], ["G_B"])
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(module(x)[0], reference.networks["G_B"](x).image, atol=1e-6)


def test_corrupt_files_are_skipped_and_reported(tmp_path, photos):
    trained_run(tmp_path, "cycle_gan")
    (photos / "broken.png").write_bytes(b"not an image")
    result = run_script("translate.py", "--name", "cycle_gan", "--checkpoints_dir", tmp_path / "ckpt", "--input", photos,
                        "--output", tmp_path / "out", "--gpu_ids", "-1", "--num_threads", "0", "--load_size", "40")
    assert result.returncode == 1 and "1 file(s) could not be read" in result.stderr and "broken.png" in result.stderr
    assert "translated 3 image(s)" in result.stdout and "images/s" in result.stdout
    with Image.open(tmp_path / "out" / "wide.png") as image:
        assert image.size == (40, 30)  # --load_size 40 resizes, keeping the aspect ratio


def test_multi_domain_needs_a_known_target_domain(tmp_path, photos):
    trained_run(tmp_path, "attentiongan_multi")
    result = run_script("translate.py", "--name", "attentiongan_multi", "--checkpoints_dir", tmp_path / "ckpt", "--input",
                        photos, "--output", tmp_path / "out", "--gpu_ids", "-1", "--target_domain", "zebra")
    assert result.returncode == 2 and "--target_domain must be one of the model's domains" in result.stderr
    assert "striped" in result.stderr


@pytest.mark.slow  # ONNX's exporter takes ~15 s per model on 2 cores
@pytest.mark.parametrize(("model", "extra"), [("attentiongan", []), ("attentiongan_multi", ["--target_domain", "spotted"])])
def test_export_to_torchscript_and_onnx_matches_pytorch(tmp_path, model, extra):
    pytest.importorskip("onnxruntime")
    trained_run(tmp_path, model)
    result = run_script("scripts/export_generator.py", "--name", model, "--checkpoints_dir", tmp_path / "ckpt", "--out",
                        tmp_path / "exported", "--size", "32", "--tolerance", "1e-4", *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("max |difference|") == 2 and "outputs ['output', 'attention']" in result.stdout
    stem = tmp_path / "exported" / f"{model}_{extra[-1] if extra else 'AtoB'}"
    assert stem.with_suffix(".pt").exists() and stem.with_suffix(".onnx").exists()
    import onnxruntime

    session = onnxruntime.InferenceSession(str(stem.with_suffix(".onnx")), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"image": np.zeros((2, 3, 40, 24), np.float32)})  # dynamic batch, height and width
    assert [o.shape for o in outputs] == [(2, 3, 40, 24), (2, 1, 40, 24)]


class CycleGANResnetLayout(nn.Module):
    """The CycleGAN repository's ResNet generator layout (one Sequential ``model``; blocks with ``conv_block``)."""

    class Block(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
                                            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.conv_block(x)

    def __init__(self, ngf: int = 4, n_blocks: int = 3) -> None:
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1), nn.InstanceNorm2d(ngf * mult * 2), nn.ReLU(True)]
        layers += [self.Block(ngf * 4) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1),
                       nn.InstanceNorm2d(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def test_cyclegan_repository_resnet_weights_convert_to_the_same_outputs(tmp_path, photos):
    torch.manual_seed(4)
    released = CycleGANResnetLayout(ngf=4, n_blocks=3)
    state = released.state_dict()
    state["model.2.running_mean"] = torch.zeros(4)  # what old checkpoints hold for instance norm
    torch.save(state, tmp_path / "horse2zebra.pth")
    converted, architecture = convert_released_generator(state)
    assert architecture == {"netG": "resnet_3blocks", "ngf": 4, "input_nc": 3, "output_nc": 3, "norm": "instance",
                            "no_dropout": True}
    ours = networks.define_generator("resnet_3blocks", 3, 3, 4, "instance", False)
    ours.load_state_dict(converted)
    x = torch.rand(2, 3, 32, 40) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(ours(x), released(x), atol=1e-6)
    result = run_script("scripts/convert_cyclegan_weights.py", "--G_A", tmp_path / "horse2zebra.pth", "--name", "released",
                        "--checkpoints_dir", tmp_path / "ckpt")
    assert result.returncode == 0 and "resnet_3blocks" in result.stdout, result.stderr
    assert translate_script.main(["--name", "released", "--checkpoints_dir", str(tmp_path / "ckpt"), "--input",
                                  str(photos / "wide.png"), "--output", str(tmp_path / "out"), "--gpu_ids", "-1",
                                  "--num_threads", "0", "--no_progress"]) == 0
    with Image.open(tmp_path / "out" / "wide.png") as image:
        assert image.size == (50, 37)


def test_cyclegan_repository_unet_weights_keep_their_keys(tmp_path):
    torch.manual_seed(5)
    unet = networks.define_generator("unet_64", 3, 3, 4, "batch", True)  # the repository's U-Net nests identically
    converted, architecture = convert_released_generator({f"module.{k}": v for k, v in unet.state_dict().items()})
    assert architecture == {"netG": "unet_64", "ngf": 4, "input_nc": 3, "output_nc": 3, "norm": "batch", "no_dropout": False}
    assert converted.keys() == unet.state_dict().keys()
    torch.save(unet.state_dict(), tmp_path / "latest_net_G.pth")
    result = run_script("scripts/convert_cyclegan_weights.py", "--G", tmp_path / "latest_net_G.pth", "--model", "pix2pix",
                        "--name", "facades", "--checkpoints_dir", tmp_path / "ckpt")
    assert result.returncode == 0 and "unet_64" in result.stdout, result.stderr
    bad = run_script("scripts/convert_cyclegan_weights.py", "--G_A", tmp_path / "ckpt" / "facades" / "latest.pt",
                     "--name", "x", "--checkpoints_dir", tmp_path / "ckpt")
    assert bad.returncode == 2 and "latest.pt" in bad.stderr


def test_attention_over_time_reports_each_epoch(tmp_path):
    from tests.conftest import make_unaligned

    data = make_unaligned(tmp_path / "data", n_a=4, n_b=3, size=(40, 36))
    train = run_script("train.py", "--dataroot", data, "--checkpoints_dir", tmp_path / "ckpt", "--name", "over", "--model",
                       "attentiongan", "--n_attention", "3", *TINY, "--load_size", "36", "--n_epochs", "2",
                       "--n_epochs_decay", "0", "--save_epoch_freq", "1", "--no_progress",
                       "--attention_prior", "masks", "--mask_fraction", "0.5")
    assert train.returncode == 0, train.stderr[-2000:]
    over_time = ["scripts/attention_over_time.py", "--name", "over", "--dataroot", data, "--checkpoints_dir",
                 tmp_path / "ckpt", "--size", "32"]
    result = run_script(*over_time, "--out", tmp_path / "over.png")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert len(rows) == 4 and (tmp_path / "over.png").exists()  # epochs 1, 2 x sides A, B

    # The masks the run trained on (half of each side, drawn from its seed) apart from the others.
    split = run_script(*over_time, "--phase", "train", "--split_training_masks")
    assert split.returncode == 0, split.stderr[-2000:]
    assert ("Images: A, mask not used: 2; A, mask trained on: 2; B, mask not used: 1; B, mask trained on: 2"
            in split.stdout), split.stdout
    rows = [line for line in split.stdout.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert len(rows) == 8 and sum("| mask trained on |" in line for line in rows) == 4  # epochs x sides x sets
    wrong_phase = run_script(*over_time, "--split_training_masks")
    assert wrong_phase.returncode == 2 and "--phase train" in wrong_phase.stderr
    checkpoint = torch.load(tmp_path / "ckpt" / "over" / "epoch_1.pt", weights_only=False)
    checkpoint["options"]["attention_prior"] = "none"  # as a run without masks saves it
    (tmp_path / "ckpt" / "unguided").mkdir()
    torch.save(checkpoint, tmp_path / "ckpt" / "unguided" / "epoch_1.pt")
    unguided = run_script(*over_time[:2], "unguided", *over_time[3:], "--phase", "train", "--split_training_masks")
    assert unguided.returncode == 2 and "was not trained with --attention_prior masks" in unguided.stderr
