"""The torch-free latents equal torch's for the same seed: every size class, 64-bit seeds, batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hypersd_desktop.engine.onnx.noise import initial_latents, torch_cpu_randn


@pytest.mark.parametrize("shape", [(16,), (17,), (1, 4, 8, 8), (1, 4, 64, 64), (1, 4, 128, 96), (3, 5, 7)])
@pytest.mark.parametrize("seed", [0, 7, 3605047357, 2**63 - 25])
def test_the_noise_equals_torchs(shape, seed):
    expected = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed)).numpy()
    found = torch_cpu_randn(seed, shape)
    assert found.dtype == np.float32 and found.shape == expected.shape
    assert np.abs(found - expected).max() < 2e-5


def test_a_batch_draws_seed_plus_k_for_image_k_as_the_torch_backend_does():
    from diffusers.utils.torch_utils import randn_tensor

    generators = [torch.Generator("cpu").manual_seed(41 + k) for k in range(3)]
    expected = randn_tensor((3, 4, 16, 12), generator=generators, dtype=torch.float32).numpy()
    assert np.abs(initial_latents(41, 3, 4, 128, 96) - expected).max() < 2e-5


def test_too_few_values_are_refused():
    with pytest.raises(ValueError):
        torch_cpu_randn(1, (3, 5))
