"""Option parsing, model-specific options and the model registry."""

from __future__ import annotations

import pytest

from models import BaseModel, UnknownModelError, available_models, create_model, get_model_class, register_model
from options import parse_test_options, parse_train_options
from options.base_options import parse_gpu_ids
from tests.conftest import run_script


def test_cyclegan_defaults_match_the_paper():
    opt = parse_train_options(["--model", "cycle_gan"])
    assert (opt.netG, opt.netD, opt.gan_mode, opt.norm) == ("resnet_9blocks", "basic", "lsgan", "instance")
    assert (opt.lambda_A, opt.lambda_B, opt.lambda_identity, opt.pool_size) == (10.0, 10.0, 0.5, 50)
    assert (opt.lr, opt.beta1, opt.load_size, opt.crop_size) == (0.0002, 0.5, 286, 256)
    assert opt.dataset_mode == "unaligned" and opt.no_dropout


def test_pix2pix_defaults_and_its_own_options():
    opt = parse_train_options(["--model", "pix2pix", "--lambda_L1", "50"])
    assert (opt.netG, opt.norm, opt.gan_mode, opt.dataset_mode, opt.pool_size) == ("unet_256", "batch", "vanilla", "aligned", 0)
    assert opt.lambda_L1 == 50
    assert not hasattr(opt, "lambda_A")


def test_model_option_is_rejected_for_another_model(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_train_options(["--model", "cycle_gan", "--lambda_L1", "5"])
    assert exit_info.value.code == 2
    assert "--lambda_L1" in capsys.readouterr().err


def test_explicit_options_override_model_defaults():
    opt = parse_train_options(["--model", "pix2pix", "--netG", "unet_128", "--norm", "instance"])
    assert (opt.netG, opt.norm) == ("unet_128", "instance")


def test_test_options_disable_augmentation_and_follow_crop_size():
    opt = parse_test_options(["--model", "cycle_gan", "--crop_size", "64"])
    assert opt.serial_batches and opt.no_flip and opt.load_size == 64 and not opt.isTrain
    assert opt.results_dir == "./results" and opt.num_test == 50


def test_gpu_ids():
    assert parse_gpu_ids("0,1") == [0, 1]
    assert parse_gpu_ids("-1") == []


def test_unknown_model_on_the_command_line_exits_2_listing_models():
    result = run_script("train.py", "--model", "no_such_model")
    assert result.returncode == 2
    for name in ("cycle_gan", "pix2pix"):
        assert name in result.stderr
    assert "no_such_model" in result.stderr


def test_registry_errors_list_known_models():
    with pytest.raises(UnknownModelError) as err:
        get_model_class("nope")
    assert "cycle_gan" in str(err.value) and "pix2pix" in str(err.value)
    with pytest.raises(UnknownModelError):
        create_model("nope", None, None)


def test_registry_refuses_a_second_class_under_a_taken_name():
    with pytest.raises(ValueError, match="registered twice"):

        @register_model("cycle_gan")
        class Impostor(BaseModel):
            pass


def test_registered_models():
    assert {"cycle_gan", "pix2pix", "test"} <= set(available_models())
    assert get_model_class("cycle_gan").name == "cycle_gan"
