"""Variation seeds (A1111's "Variation seed" and "Variation strength"): close variations of an image.

An image made from the prompt starts from its seed's noise; one made from a picture, from the picture's
latents with its seed's noise added. A variation turns that noise `strength` of the way towards a
second seed's noise along the sphere they lie on (spherical interpolation), so the noise keeps the
length pure noise has and strength 0 is the seed's own image: small strengths are close variations of
it, 1 is the variation seed's noise (from the prompt, the variation seed's image). A1111 interpolates
each column of the latents on its own; here each image's latents are interpolated as one vector, which
keeps the same property. Both backends use this (torch-free) on the noise they draw as they always do,
so the rest of the run, the scheduler's noise and the picture's sampled latents included, is the seed's.
"""

from __future__ import annotations

import numpy as np

NEARLY_PARALLEL = 0.9995  # above this cosine, the two noises are one direction: a straight line between them


def slerp(strength: float, seed_noise: np.ndarray, variation_noise: np.ndarray) -> np.ndarray:
    """Per image (the first axis), the noise `strength` of the way from `seed_noise` to `variation_noise` along
    the sphere, float32."""
    low = seed_noise.astype(np.float64).reshape(len(seed_noise), -1)
    high = variation_noise.astype(np.float64).reshape(len(variation_noise), -1)
    cosine = np.sum(low * high, axis=1) / (np.linalg.norm(low, axis=1) * np.linalg.norm(high, axis=1))
    cosine = np.clip(cosine, -1.0, 1.0)[:, None]
    angle = np.arccos(cosine)
    with np.errstate(divide="ignore", invalid="ignore"):
        spherical = (np.sin((1.0 - strength) * angle) * low + np.sin(strength * angle) * high) / np.sin(angle)
    straight = (1.0 - strength) * low + strength * high
    mixed = np.where(cosine > NEARLY_PARALLEL, straight, spherical)
    if strength == 0:
        mixed = low  # exactly the seed's noise
    return mixed.reshape(seed_noise.shape).astype(np.float32)
