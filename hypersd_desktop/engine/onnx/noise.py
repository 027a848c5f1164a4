"""torch's CPU `randn` in numpy: the same starting latents as the torch backend for the same seed,
without torch (the ONNX backend's runtime may have none).

The torch backend draws each image's latents with `torch.randn(shape, generator=torch.Generator("cpu")
.manual_seed(seed + k))` (diffusers' `randn_tensor` with one generator per image). For a float32
tensor of 16 or more elements ATen's CPU kernel does this (`normal_fill` in DistributionTemplates.h):

1. one uniform float per element from the generator's mt19937, seeded with the seed's low 32 bits:
   `(draw & 0xFFFFFF) / 2**24`;
2. Box-Muller on blocks of 16: for j < 8, u1 = 1 - x[j], u2 = x[j + 8], r = sqrt(-2 ln u1),
   x[j] = r cos(2 pi u2), x[j + 8] = r sin(2 pi u2);
3. when the size is not a multiple of 16, the last 16 values are drawn again and transformed.

numpy's MT19937 with its legacy seeding is the same generator. The AVX2 build of that kernel uses
float32 vector maths, so values agree to about 1e-6, not bit for bit.
"""

from __future__ import annotations

import numpy as np

BLOCK = 16


def _uniform(state: np.random.RandomState, count: int) -> np.ndarray:
    draws = state.randint(0, 2**32, size=count, dtype=np.uint32)
    return (draws & 0xFFFFFF).astype(np.float64) / 2**24


def _box_muller(block: np.ndarray) -> np.ndarray:
    """Blocks of 16 uniforms (rows) to normals, in place of the rows."""
    u1, u2 = 1.0 - block[:, :8], block[:, 8:]
    radius = np.sqrt(-2.0 * np.log(u1))
    theta = 2.0 * np.pi * u2
    return np.concatenate([radius * np.cos(theta), radius * np.sin(theta)], axis=1)


class TorchCpuGenerator:
    """A `torch.Generator("cpu").manual_seed(seed)` that draws normals as torch does, call after call
    (the latents first, then the noise TCD and LCM add between steps)."""

    def __init__(self, seed: int) -> None:
        self.state = np.random.RandomState(seed & 0xFFFFFFFF)

    def randn(self, shape: tuple[int, ...]) -> np.ndarray:
        size = int(np.prod(shape))
        if size < BLOCK:
            raise ValueError("fewer than 16 values take torch's other path; latents never do")
        values = _uniform(self.state, size)
        whole = size - size % BLOCK
        values[:whole] = _box_muller(values[:whole].reshape(-1, BLOCK)).reshape(-1)
        if size % BLOCK:
            values[size - BLOCK:] = _box_muller(_uniform(self.state, BLOCK).reshape(1, BLOCK)).reshape(-1)
        return values.astype(np.float32).reshape(shape)


def torch_cpu_randn(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """What `torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))` returns, as float32."""
    return TorchCpuGenerator(seed).randn(shape)


def batch_randn(generators: list[TorchCpuGenerator], shape: tuple[int, ...]) -> np.ndarray:
    """diffusers' `randn_tensor` with one generator per image: image k's part from generator k."""
    return np.concatenate([generator.randn((1, *shape[1:])) for generator in generators])


def initial_latents(seed: int, batch_size: int, channels: int, height: int, width: int) -> np.ndarray:
    """One image's latents per seed, `seed + k` for image k, as the torch backend draws them."""
    generators = [TorchCpuGenerator(seed + k) for k in range(batch_size)]
    return batch_randn(generators, (batch_size, channels, height // 8, width // 8))
