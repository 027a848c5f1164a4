"""The engine's contract: one frozen request in, results and progress out.

Everything that decides what a generation produces is in `GenerationRequest`, so a request
serialised next to an image reproduces it exactly. These types import neither torch nor Qt:
the GUI process builds requests and reads results without loading the inference stack.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from hypersd_desktop.core.errors import InputError

DEVICES = ("auto", "cuda", "mps", "cpu")
DTYPES = ("auto", "fp32", "fp16", "bf16")
SCHEDULERS = ("auto", "ddim-trailing", "tcd", "lcm")
PREVIEWS = ("none", "latent", "taesd")
DECODERS = ("vae", "taesd")


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA file applied with a weight (1.0 = as trained)."""

    path: str
    weight: float = 1.0


@dataclass(frozen=True)
class GenerationRequest:
    """Everything one generation needs.

    `base_model` is a diffusers folder or a single-file `.safetensors` checkpoint;
    `base_config` optionally names the diffusers config folder a single-file checkpoint is read
    with (default: the bundled one for its architecture). `unet` replaces the base model's UNet
    (the Hyper-SDXL 1-step UNet); `vae` replaces its VAE (the fp16-safe SDXL VAE). `loras` are
    fused in order. `recipe` names a Hyper-SD recipe (see `recipes.RECIPES`) or is None to let
    the engine choose from the LoRAs and UNet given. `steps`, `guidance`, `eta`, `scheduler` and
    `timesteps` left at None take the recipe's values. Image k of the batch uses seed `seed + k`.
    """

    prompt: str
    base_model: str
    negative_prompt: str = ""
    base_config: str | None = None
    unet: str | None = None
    vae: str | None = None
    loras: tuple[LoraSpec, ...] = ()
    recipe: str | None = None
    steps: int | None = None
    guidance: float | None = None
    eta: float | None = None
    scheduler: str = "auto"
    timesteps: tuple[int, ...] | None = None
    seed: int = 0
    width: int | None = None
    height: int | None = None
    batch_size: int = 1
    device: str = "auto"
    dtype: str = "auto"
    preview: str = "none"
    decoder: str = "vae"
    taesd: str | None = None
    attention_slicing: bool = False
    vae_tiling: bool = False
    cpu_offload: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise `InputError` for values no generation could use."""
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (value < 64 or value % 8):
                raise InputError(f"{name.capitalize()} must be a multiple of 8 and at least 64; got {value}.")
        if self.steps is not None and not 1 <= self.steps <= 100:
            raise InputError(f"Steps must be between 1 and 100; got {self.steps}.")
        if self.guidance is not None and self.guidance < 0:
            raise InputError(f"Guidance must be 0 or more; got {self.guidance}.")
        if self.eta is not None and not 0.0 <= self.eta <= 1.0:
            raise InputError(f"Eta must be between 0 and 1; got {self.eta}.")
        if not 1 <= self.batch_size <= 64:
            raise InputError(f"Batch size must be between 1 and 64; got {self.batch_size}.")
        if not 0 <= self.seed < 2**63:
            raise InputError(f"Seed must be between 0 and 2^63-1; got {self.seed}.")
        if self.timesteps is not None and (not self.timesteps or any(not 0 <= t < 1000 for t in self.timesteps)):
            raise InputError("Timesteps must be a non-empty list of integers between 0 and 999.")
        for name, allowed in (
            ("device", DEVICES),
            ("dtype", DTYPES),
            ("scheduler", SCHEDULERS),
            ("preview", PREVIEWS),
            ("decoder", DECODERS),
        ):
            if getattr(self, name) not in allowed:
                raise InputError(f"Unknown {name} {getattr(self, name)!r}; choose one of {', '.join(allowed)}.")
        if (self.preview == "taesd" or self.decoder == "taesd") and not self.taesd:
            raise InputError("A TAESD preview or decode needs the TAESD weights; install TAESD or choose another.")

    def replace(self, **changes: Any) -> GenerationRequest:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["loras"] = [dataclasses.asdict(lora) for lora in self.loras]
        data["timesteps"] = list(self.timesteps) if self.timesteps is not None else None
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["loras"] = tuple(LoraSpec(**lora) for lora in values.get("loras", ()))
        if values.get("timesteps") is not None:
            values["timesteps"] = tuple(values["timesteps"])
        return cls(**values)


@dataclass(frozen=True)
class ResolvedSettings:
    """What the engine actually ran, after the recipe filled in what the request left open."""

    recipe: str | None
    architecture: str
    scheduler: str
    steps: int
    guidance: float
    eta: float | None
    timesteps: tuple[int, ...] | None
    width: int
    height: int
    device: str
    dtype: str


@dataclass(frozen=True)
class Progress:
    """One denoising step done. `preview` is an RGB image (PIL) when previews were asked for."""

    step: int
    total_steps: int
    image_index: int = 0
    batch_size: int = 1
    preview: Any = None
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class GenerationResult:
    """One image of a batch with the seed that makes it and what was run."""

    image: Any  # PIL.Image.Image
    seed: int
    index: int
    request: GenerationRequest
    settings: ResolvedSettings
    warnings: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
