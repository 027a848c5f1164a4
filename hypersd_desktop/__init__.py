"""HyperSD Desktop: Stable Diffusion 1.5 and SDXL in 1 to 8 steps with Hyper-SD."""

__version__ = "0.1.0"
