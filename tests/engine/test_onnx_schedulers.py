"""The numpy schedulers step as diffusers' do, from the same base configs, noise included."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.resources import resources_dir
from hypersd_desktop.core.vocab import Scheduler
from hypersd_desktop.engine.onnx import schedulers
from hypersd_desktop.engine.onnx.noise import TorchCpuGenerator, batch_randn
from hypersd_desktop.engine.schedulers import build_scheduler

SHAPE = (2, 4, 8, 12)


def base_scheduler(architecture: str):
    from diffusers import EulerDiscreteScheduler, PNDMScheduler

    folder = resources_dir() / "configs" / architecture / "scheduler"
    config = json.loads((folder / "scheduler_config.json").read_text())
    kind = EulerDiscreteScheduler if config["_class_name"] == "EulerDiscreteScheduler" else PNDMScheduler
    return kind.from_pretrained(folder), config


def run_both(name: str, architecture: str, steps=None, timesteps=None, eta=None, seed=5):
    """The same loop on both sides: latents from the images' generators, a fixed stand-in for the UNet."""
    base, config = base_scheduler(architecture)
    reference = build_scheduler(name, base)
    ours = schedulers.build(name, config)
    if timesteps is not None:
        reference.set_timesteps(timesteps=list(timesteps))
        ours.set_timesteps(timesteps=list(timesteps))
    else:
        reference.set_timesteps(steps)
        ours.set_timesteps(steps)
    assert ours.timesteps.tolist() == reference.timesteps.tolist()

    torch_generators = [torch.Generator("cpu").manual_seed(seed + k) for k in range(SHAPE[0])]
    our_generators = [TorchCpuGenerator(seed + k) for k in range(SHAPE[0])]
    from diffusers.utils.torch_utils import randn_tensor

    sample_t = randn_tensor(SHAPE, generator=torch_generators, dtype=torch.float32)
    sample_n = batch_randn(our_generators, SHAPE)
    unet = np.random.default_rng(0)
    extra_t = {"eta": eta} if eta is not None else {}
    for t in reference.timesteps.tolist():
        output = unet.standard_normal(SHAPE).astype(np.float32)  # what a UNet would predict
        sample_t = reference.step(torch.from_numpy(output), t, sample_t, generator=torch_generators, **extra_t).prev_sample
        sample_n = ours.step(output, t, sample_n, generators=our_generators, **extra_t)
    return sample_t.numpy(), sample_n


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_ddim_trailing(architecture, steps):
    expected, found = run_both(Scheduler.DDIM_TRAILING, architecture, steps)
    assert np.abs(found - expected).max() < 1e-4


@pytest.mark.parametrize("steps,eta", [(1, 1.0), (2, 1.0), (4, 0.8), (8, 0.3), (4, 0.0)])
def test_tcd_with_its_noise(steps, eta):
    expected, found = run_both(Scheduler.TCD, "sd15", steps, eta=eta)
    assert np.abs(found - expected).max() < 1e-4


def test_tcd_with_explicit_timesteps():
    expected, found = run_both(Scheduler.TCD, "sdxl", timesteps=(999, 899, 799, 600), eta=1.0)
    assert np.abs(found - expected).max() < 1e-4


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_lcm(steps):
    expected, found = run_both(Scheduler.LCM, "sdxl", steps)
    assert np.abs(found - expected).max() < 1e-4


def test_lcm_at_the_one_step_unets_timestep():
    expected, found = run_both(Scheduler.LCM, "sdxl", timesteps=(800,))
    assert np.abs(found - expected).max() < 1e-4


def test_what_is_not_ported_is_refused_with_the_way_out():
    _, config = base_scheduler("sd15")
    with pytest.raises(InputError, match="torch backend"):
        schedulers.build(Scheduler.BASE, config)
    with pytest.raises(InputError, match="descending"):
        schedulers.build(Scheduler.TCD, config).set_timesteps(timesteps=[10, 500])
