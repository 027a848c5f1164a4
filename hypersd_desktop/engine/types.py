"""The engine's contract: one frozen request in, results and progress out.

Everything that decides what a generation produces is in `GenerationRequest`, so a request
serialised next to an image reproduces it exactly. These types import neither torch nor Qt:
the GUI process builds requests and reads results without loading the inference stack.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hypersd_desktop.core.codec import CodecError, from_data, to_data
from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import DIGEST
from hypersd_desktop.core.vocab import (
    MASK_MERGES, MAX_DILATE_ERODE, MAX_MASK_OFFSET, Architecture, ControlType, Decoder, Device, DType, Mode,
    Preprocessor, Preview, Scheduler, SeamFix,
    Tiling,
)

AUTO_BACKEND = "auto"
BACKEND_TITLES = {"torch": "PyTorch", "onnx": "ONNX Runtime"}  # what the window calls the built-in backends
MAX_SEED = 2**63 - 1
MAX_SIDE = 4096  # pixels; SD1.5 and SDXL make sense up to about 2048
MAX_STEPS = 100  # a plain model wants 20 to 50; Hyper-SD 1 to 8
DISTILLED_STEPS = 50  # TCD and LCM space their steps over a 50-step schedule (their original_inference_steps)
MAX_CLIP_SKIP = 12  # the layers of SD1.5's CLIP text encoder
MAX_PROMPT_CHARACTERS = 20_000  # far past the 600 tokens that are read: a pasted page, not a prompt
MAX_BATCH_PIXELS = 16 * 1024 * 1024  # width × height × batch size: sixteen 1024² images
LARGEST_INIT_AREA = 2.25  # init images up to this many times the model's own area are made at their own size
MAX_MASKED_PADDING = 256  # pixels around the masked area (A1111's slider goes to 256)
MAX_HIRES_SCALE = 4.0  # A1111's Hires fix slider ends at 4
MIN_REPAINT_TILE, MAX_REPAINT_TILE = 64, 2048  # a repaint's tiles (`GenerationRequest.repaint_tile`), a side
TILE_PADDING = 32  # pixels of the picture around a repaint's tile that the model sees with it (Ultimate SD Upscale's)
TILE_MASK_BLUR = 8  # pixels of blur on the edge a tile is laid back in along (Ultimate SD Upscale's)
MAX_TILE_PADDING, MAX_TILE_MASK_BLUR = 128, 64  # the extension's sliders' ends
TILE_STAGE = "Repainting in tiles"  # the `Progress.stage` of a repaint made a tile at a time
SEAMS_STAGE = "Fixing the tiles' seams"  # and of the seams between its tiles repainted after them (`SeamsFix`)
UPSCALE_STAGE = "Upscaling"  # the `Progress.stage` of an upscaler model enlarging a picture, tile by tile
IP_ADAPTER_SCALE = 0.6  # the window's and the command line's: the picture and the prompt both count (1: the picture)
HIRES_STAGE = "Hires fix"  # the `Progress.stage` of a Hires fix's second pass, whose steps it counts
FACE_STAGE = "Detailing faces"  # the `Progress.stage` of a face pass (`DetailPass`), whose steps it counts
HAND_STAGE = "Detailing hands"  # and of a hand pass
MAX_DETAILED = 100  # the most faces (hands) a detail pass can be told to keep, the largest first
# the stages that count a pass's denoising steps, as the image's do (a face's: "Detailing faces (1 of 2)")
STEP_STAGES = (HIRES_STAGE, TILE_STAGE, SEAMS_STAGE, FACE_STAGE, HAND_STAGE)


def counts_steps(stage: str) -> bool:
    """Whether `stage` (a `Progress.stage`) counts a pass's steps (`STEP_STAGES`), not its own parts."""
    return stage.startswith(STEP_STAGES)


def area_size(region: tuple[int, int], model_side: int) -> tuple[int, int]:
    """The size a region of `region`'s shape is made at: about the model's own area (`model_side`²), scaled up or
    down, its sides multiples of 8 within 64 and MAX_SIDE."""
    width, height = region
    scale = model_side / math.sqrt(width * height)

    def side(length: int) -> int:
        return min(MAX_SIDE, max(64, round(length * scale / 8) * 8))

    return side(width), side(height)


def hires_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The size a Hires fix makes an image of `width` × `height` at: `scale` times, sides cut to multiples of 8."""
    return tuple(min(MAX_SIDE, max(64, int(side * scale) // 8 * 8)) for side in (width, height))


def hires_schedule(steps: int, strength: float, most: int = MAX_STEPS) -> int:
    """The schedule a Hires fix's second pass runs its last `steps` of at `strength`, as A1111 runs "Hires steps":
    the shortest whose `strength` share is `steps` (20 steps at 0.5: the last 20 of 40), at most `most`."""
    length = max(steps, math.ceil(steps / strength))
    while int(length * strength) < steps:  # as the image-to-image schedule counts them, floats and all
        length += 1
    return min(length, most)


def enlarged_size(picture: tuple[int, int], scale: float) -> tuple[int, int]:
    """The size an init image `picture` (width, height) enlarged `scale` times is made at: its own size times
    `scale` (not the model's size a large photo is otherwise scaled to), less where a side would pass MAX_SIDE,
    its aspect ratio kept; sides cut to multiples of 8."""
    scale = min(scale, MAX_SIDE / max(picture))
    return tuple(min(MAX_SIDE, max(64, int(side * scale) // 8 * 8)) for side in picture)


def init_size(picture: tuple[int, int], model_side: int) -> tuple[int, int]:
    """The size an image-to-image run has when the request names none: the picture's, its sides cut down to
    multiples of 8; for a picture over 2.25 times the model's area (a phone photo), about the model's own area
    (`model_side`²) at the picture's aspect ratio (0: no model size, no scaling). Sides stay within 64 and
    MAX_SIDE."""
    width, height = picture
    area = model_side * model_side
    scale = math.sqrt(area / (width * height)) if 0 < LARGEST_INIT_AREA * area < width * height else 1.0
    scale = min(scale, MAX_SIDE / max(width, height))

    def side(length: int) -> int:
        return min(MAX_SIDE, max(64, int(length * scale) // 8 * 8))

    return side(width), side(height)


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA file applied with a weight (1.0 = as trained)."""

    path: str
    weight: float = 1.0


@dataclass(frozen=True)
class ControlSpec:
    """A ControlNet and the image that steers it: `image` is the sha256 of an input image (`core/images.py`),
    weighted by `scale` over the fraction `start`–`end` of the denoising steps. With `preprocessor` NONE
    the image is what the ControlNet sees (edges, a scribble); otherwise it is the picture that is made
    from (a drawing for SCRIBBLE), so a stored request names the drawing itself and the Draw tab can
    open it again. `control_type` says what the image is to a ControlNet Union model (a scribble's is known
    without it); other ControlNets are made for one kind and ignore it."""

    model: str
    image: str
    scale: float = 1.0
    start: float = 0.0
    end: float = 1.0
    preprocessor: Preprocessor = Preprocessor.NONE
    control_type: ControlType | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "preprocessor", Preprocessor(self.preprocessor))
        except ValueError:
            raise InputError(f"Unknown control image preprocessor {self.preprocessor!r}; choose one of "
                             f"{', '.join(Preprocessor.values())}.") from None
        if self.control_type is not None:
            try:
                object.__setattr__(self, "control_type", ControlType(self.control_type))
            except ValueError:
                raise InputError(f"Unknown control type {self.control_type!r}; choose one of "
                                 f"{', '.join(ControlType.values())}.") from None

    @property
    def union_type(self) -> ControlType | None:
        """What the image is to a ControlNet Union model: as given, a scribble's soft edges, or the picture to repaint
        of an inpainting."""
        if self.control_type is not None:
            return self.control_type
        return {Preprocessor.SCRIBBLE: ControlType.SOFTEDGE, Preprocessor.INPAINT: ControlType.REPAINT}.get(
            self.preprocessor)


@dataclass(frozen=True)
class IPAdapterSpec:
    """An IP-Adapter and the picture it steers the image by, as a prompt steers it by words: `model` is the adapter
    file, `encoder` the CLIP image encoder it reads the picture with (a folder or its weights), `image` the sha256
    of an input image (`core/images.py`), `scale` how strongly the picture counts (1.0 = as trained; about 0.5 mixes
    it with the prompt)."""

    model: str
    encoder: str
    image: str
    scale: float = 1.0


@dataclass(frozen=True)
class SeamsFix:
    """The seams between a repaint's tiles repainted once all of them are, as the Ultimate SD Upscale extension's
    "Seams fix" repaints them (engine/repaint_tiles.py): by `mode`, each seam's area inpainted on its own (only the
    masked area, `padding` pixels around it) through a mask fading from the seam to nothing `width` pixels across
    (a band) or a tile's size across (half tile), `strength` of the schedule repainting it. The extension's
    defaults."""

    mode: SeamFix = SeamFix.BAND
    strength: float = 0.35
    width: int = 64  # a band's, across its seam
    mask_blur: int = 4  # of a half tile's mask (a band's fading edge is its own blur)
    padding: int = 16

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mode", SeamFix(self.mode))
        except ValueError:
            raise InputError(f"Unknown seams fix {self.mode!r}; choose one of {', '.join(SeamFix.values())}.") from None

    def validate(self) -> None:
        if not 0.0 < self.strength <= 1.0:  # also refuses nan
            raise InputError(f"The seams fix's strength must be above 0 and at most 1; got {self.strength}.")
        if not 8 <= self.width <= 256:
            raise InputError(f"The seams fix's band is 8 to 256 pixels wide; got {self.width}.")
        if not 0 <= self.mask_blur <= 64:
            raise InputError(f"The seams fix's mask blur must be between 0 and 64 pixels; got {self.mask_blur}.")
        if not 0 <= self.padding <= MAX_MASKED_PADDING:
            raise InputError(f"The padding around a seam must be between 0 and {MAX_MASKED_PADDING} pixels; got "
                             f"{self.padding}.")


@dataclass(frozen=True)
class DetailPass:
    """A detail pass, as ADetailer's: once the image is made (and its Hires fix), each face (or hand: the request's
    `face_detail` or `hand_detail`) found in it is made again on its own at about the model's size, `strength` of the
    schedule repainting it, and laid back into the image (inpainting only the masked area, `padding` pixels of the
    image around it; the mask's edge blurred `mask_blur` pixels), with `prompt` and `negative_prompt` where given
    (else the image's). They are found from the pose of the people in the image (engine/body_parts.py): `model` is
    the pose model (ViTPose), `detector` the person detector (RT-DETR); a face is one whose eyes and nose are seen
    with a score of at least `confidence`, a hand one whose wrist and elbow are. `largest` above 0 repaints only
    that many, the largest (ADetailer's "mask only top k largest"). `steps`, `guidance` and `width` × `height`, where
    given, are the pass's own (ADetailer's "use separate steps", "use separate CFG scale" and "use inpaint width
    height"); else the image's steps and guidance, at about the image's size.

    The masks are shaped as ADetailer shapes them (`body_parts.shaped_masks`): only those whose box is `min_ratio`
    to `max_ratio` of the image's area are kept, then moved `x_offset` pixels right and `y_offset` up, grown
    (`dilate_erode` above 0) or shrunk (below 0) by that many pixels across, and `merge` ("merge": one pass over
    all of them; "merge and invert": one over all the rest of the image) or not ("none")."""

    model: str
    detector: str
    strength: float = 0.4
    prompt: str = ""
    negative_prompt: str = ""
    padding: int = 32
    mask_blur: int = 4
    confidence: float = 0.3
    largest: int = 0
    steps: int | None = None
    guidance: float | None = None
    width: int | None = None
    height: int | None = None
    dilate_erode: int = 0
    x_offset: int = 0
    y_offset: int = 0
    min_ratio: float = 0.0
    max_ratio: float = 1.0
    merge: str = "none"

    def validate(self, part: str = "face") -> None:
        """`part`: "face" or "hand", the word the errors use."""
        if not 0.0 < self.strength <= 1.0:  # also refuses nan
            raise InputError(f"The {part} pass's strength must be above 0 and at most 1; got {self.strength}.")
        if not 0 <= self.padding <= MAX_MASKED_PADDING:
            raise InputError(f"The padding around a {part} must be between 0 and {MAX_MASKED_PADDING} pixels; got "
                             f"{self.padding}.")
        if not 0 <= self.mask_blur <= 64:
            raise InputError(f"The {part} mask's blur must be between 0 and 64 pixels; got {self.mask_blur}.")
        if not 0.0 <= self.confidence <= 1.0:
            raise InputError(f"The {part} pass's confidence must be between 0 and 1; got {self.confidence}.")
        if not 0 <= self.largest <= MAX_DETAILED:
            raise InputError(f"The {part} pass repaints from 1 to {MAX_DETAILED} of the largest {part}s (0: all); "
                             f"got {self.largest}.")
        if self.steps is not None and not 1 <= self.steps <= MAX_STEPS:
            raise InputError(f"The {part} pass's steps must be between 1 and {MAX_STEPS}; got {self.steps}.")
        if self.guidance is not None and not 0 <= self.guidance <= 30:  # also refuses nan
            raise InputError(f"The {part} pass's guidance must be between 0 and 30; got {self.guidance}.")
        if (self.width is None) != (self.height is None):
            raise InputError(f"The {part} pass's own size needs both a width and a height.")
        for side in (self.width, self.height):
            if side is not None and (side < 64 or side % 8 or side > MAX_SIDE):
                raise InputError(f"The {part} pass's width and height must be multiples of 8 from 64 to {MAX_SIDE}; "
                                 f"got {self.width} × {self.height}.")
        if not -MAX_DILATE_ERODE <= self.dilate_erode <= MAX_DILATE_ERODE:
            raise InputError(f"The {part} mask grows or shrinks by at most {MAX_DILATE_ERODE} pixels; got "
                             f"{self.dilate_erode}.")
        if not (-MAX_MASK_OFFSET <= self.x_offset <= MAX_MASK_OFFSET and -MAX_MASK_OFFSET <= self.y_offset
                <= MAX_MASK_OFFSET):
            raise InputError(f"The {part} mask moves by at most {MAX_MASK_OFFSET} pixels each way; got "
                             f"{self.x_offset}, {self.y_offset}.")
        if not 0.0 <= self.min_ratio <= self.max_ratio <= 1.0:  # also refuses nan
            raise InputError(f"The {part} pass's area ratios must be 0 ≤ min ≤ max ≤ 1; got {self.min_ratio} and "
                             f"{self.max_ratio}.")
        if self.merge not in MASK_MERGES:
            raise InputError(f"The {part} masks' merge must be one of {', '.join(MASK_MERGES)}; got {self.merge!r}.")


@dataclass(frozen=True)
class GenerationRequest:
    """Everything one generation needs.

    `base_model` is a diffusers folder or a single-file `.safetensors` checkpoint;
    `base_config` optionally names the diffusers config folder a single-file checkpoint is read
    with (default: the bundled one for its architecture). `unet` replaces the base model's UNet
    (the Hyper-SDXL 1-step UNet); `vae` replaces its VAE (the fp16-safe SDXL VAE). `loras` are
    fused in order. `recipe` names a Hyper-SD recipe (see `recipes.RECIPES`) or is None to let
    the engine choose from the LoRAs and UNet given. `steps`, `guidance`, `eta`, `scheduler` and
    `timesteps` left at None take the recipe's values. Image k of the batch uses seed `seed + k`; with a variation
    (A1111's variation seed), every image keeps `seed` and image k varies it by `variation_seed + k`.
    `backend` names the engine backend ("torch", "onnx", or "auto" for the best one that runs
    on `device`); the device says where, the backend says with what.
    """

    prompt: str
    base_model: str
    negative_prompt: str = ""
    base_config: str | None = None
    unet: str | None = None
    vae: str | None = None
    loras: tuple[LoraSpec, ...] = ()
    embeddings: tuple[str, ...] = ()  # textual-inversion files; each applies where its file name is in a prompt
    recipe: str | None = None
    steps: int | None = None
    guidance: float | None = None
    eta: float | None = None
    clip_skip: int = 1  # SD1.5: read the text encoder this many layers from its end, A1111's count (1: the last)
    scheduler: Scheduler = Scheduler.AUTO
    timesteps: tuple[int, ...] | None = None
    seed: int = 0
    # A1111's variation seed: the starting noise is the seed's turned `variation_strength` of the way (along the
    # sphere) towards the variation seed's, so 0 is the seed's image and small strengths are close variations of it.
    variation_seed: int | None = None
    variation_strength: float = 0.0
    width: int | None = None
    height: int | None = None
    batch_size: int = 1
    backend: str = AUTO_BACKEND
    device: Device = Device.AUTO
    dtype: DType = DType.AUTO
    preview: Preview = Preview.NONE
    decoder: Decoder = Decoder.VAE
    taesd: str | None = None
    attention_slicing: bool = False
    vae_tiling: bool = False
    cpu_offload: bool = False
    cuda_graphs: bool = True  # replay the UNet and VAE decode as CUDA graphs (CUDA only; see engine/graphs.py)
    compile: bool = True  # compile the UNet and VAE decode in the background (CUDA only; see engine/compiled.py)
    # Images in: each names an input image by the sha256 of its bytes (core/images.py).
    init_image: str | None = None  # image-to-image; with a mask, inpainting
    strength: float = 0.75  # how much of the init image is repainted: the share of the schedule that runs
    mask_image: str | None = None  # white is repainted, black kept
    mask_blur: int = 4  # pixels of blur on the mask's edge
    # Inpaint only the masked area (A1111's "Only masked"): the mask's bounds with this many pixels around them,
    # made at about the model's size and pasted back into the whole picture; None inpaints the whole picture.
    masked_padding: int | None = None
    controls: tuple[ControlSpec, ...] = ()
    ip_adapters: tuple[IPAdapterSpec, ...] = ()  # pictures that steer the image as a prompt does
    # A1111's Hires fix: each image, made at the request's size, is enlarged `hires_scale` times (by `upscaler`) and
    # made again from it at that size, `hires_strength` of the schedule repainting it. None: one pass.
    hires_scale: float | None = None
    hires_strength: float = 0.5
    # The steps the second pass runs, as A1111's "Hires steps" (the last ones of a longer schedule: see
    # `hires_schedule`). None: `hires_strength` of the first pass's steps, on its timesteps (a Hyper-SD file's).
    hires_steps: int | None = None
    # The second pass's own prompts, as A1111's "Hires prompt" and "Hires negative prompt" (None or "": the first
    # pass's), for detail the first pass's words do not ask for.
    hires_prompt: str | None = None
    hires_negative_prompt: str | None = None
    # The second pass's own guidance, as Forge's "Hires CFG Scale" (None: the first pass's `guidance`).
    hires_guidance: float | None = None
    # The upscaler model (an ESRGAN, SPAN, DAT … file; see engine/upscalers.py) that enlarges a picture before it is
    # repainted: a Hires fix's first pass, an init image made at a larger size. None: Lanczos.
    upscaler: str | None = None
    # A face pass after the image is made (ADetailer's), then a hand pass; None: none.
    face_detail: DetailPass | None = None
    hand_detail: DetailPass | None = None
    # The detail passes alone on the init image, as it is (ADetailer's "skip img2img"): its faces and hands made
    # again, nothing else repainted.
    detail_only: bool = False
    # Repaint in tiles, as the Ultimate SD Upscale extension does: a repaint larger than a tile (a Hires fix's second
    # pass, an enlarged init image) is made one tile of about `repaint_tile` pixels a side at a time, each with
    # `tile_padding` pixels of the picture around it at about the model's own size, and laid back into the picture
    # through a mask blurred `tile_mask_blur` pixels (engine/repaint_tiles.py; the extension's "padding" and "mask
    # blur"). None: the whole picture at once.
    repaint_tile: int | None = None
    tile_padding: int = TILE_PADDING
    tile_mask_blur: int = TILE_MASK_BLUR
    # The seams between those tiles repainted after them (the extension's "Seams fix"); None: left as the tiles
    # meet. Only with `repaint_tile`.
    seams_fix: SeamsFix | None = None
    # The prompts with choices (`{a|b}`, `__wildcard__`: core/dynamic_prompts.py) the prompts were made from, where
    # they were; written into the image as the Dynamic Prompts extension writes them (`Template`). None: their own.
    prompt_template: str | None = None
    negative_template: str | None = None
    # A seamless image (A1111's Tiling): every convolution of the UNet, VAE and ControlNets wraps around the
    # image's edges the way it asks, so its copies tile without a seam.
    tiling: Tiling = Tiling.OFF

    def __post_init__(self) -> None:
        for name, vocabulary in _VOCABULARIES.items():
            value = getattr(self, name)
            if not isinstance(value, vocabulary):
                try:
                    object.__setattr__(self, name, vocabulary(value))
                except ValueError:
                    raise InputError(f"Unknown {name} {value!r}; choose one of {', '.join(vocabulary.values())}.") from None
        self.validate()

    @property
    def mode(self) -> Mode:
        if self.mask_image is not None:
            return Mode.INPAINT
        return Mode.IMAGE_TO_IMAGE if self.init_image is not None else Mode.TEXT_TO_IMAGE

    @property
    def varied(self) -> bool:
        """Whether the starting noise is varied by a variation seed."""
        return self.variation_strength > 0

    def advanced(self, count: int) -> GenerationRequest:
        """The request `count` images on: the next seed, or with a variation the next variation seed (the seed
        stays, as in A1111), wrapping at the largest seed. Image k of a batch, job k of a batch count."""
        if self.varied:
            return self.replace(variation_seed=(self.variation_seed + count) % (MAX_SEED + 1))
        return self.replace(seed=(self.seed + count) % (MAX_SEED + 1))

    def model_paths(self) -> tuple[str, ...]:
        """Every model file or folder the request uses: base model, UNet, VAE, TAESD, LoRAs, embeddings, ControlNets,
        IP-Adapters and their image encoders, the upscaler, the detail passes' pose models and person detectors."""
        passes = [(wanted.model, wanted.detector) for _part, wanted in self.detail_passes()]
        named = (self.base_model, self.unet, self.vae, self.taesd, *(lora.path for lora in self.loras),
                 *self.embeddings, *(control.model for control in self.controls),
                 *(part for adapter in self.ip_adapters for part in (adapter.model, adapter.encoder)), self.upscaler,
                 *(path for models in passes for path in models))
        return tuple(dict.fromkeys(path for path in named if path))

    def detail_passes(self) -> list[tuple[str, DetailPass]]:
        """The detail passes asked for, in the order they run (faces, then hands), each with its part's word."""
        return [(part, wanted) for part, wanted in (("face", self.face_detail), ("hand", self.hand_detail))
                if wanted is not None]

    def input_images(self) -> tuple[str, ...]:
        """The sha256 of every input image the request names."""
        named = (self.init_image, self.mask_image, *(control.image for control in self.controls),
                 *(adapter.image for adapter in self.ip_adapters))
        return tuple(dict.fromkeys(digest for digest in named if digest is not None))

    def validate(self) -> None:
        """Raise `InputError` for values no generation could use."""
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (value < 64 or value % 8 or value > MAX_SIDE):
                raise InputError(f"{name.capitalize()} must be a multiple of 8 from 64 to {MAX_SIDE}; got {value}.")
        pixels = (self.width or 1024) * (self.height or 1024) * self.batch_size
        if pixels > MAX_BATCH_PIXELS:
            raise InputError(f"{self.batch_size} image(s) of {self.width or 1024} × {self.height or 1024} is "
                             f"{pixels / 2**20:.0f} megapixels at once; the limit is {MAX_BATCH_PIXELS / 2**20:.0f}. "
                             "Make the images smaller or the batch smaller.")
        if self.steps is not None and not 1 <= self.steps <= MAX_STEPS:
            raise InputError(f"Steps must be between 1 and {MAX_STEPS}; got {self.steps}.")
        for label, guidance in (("Guidance", self.guidance), ("Hires guidance", self.hires_guidance)):
            if guidance is not None and not 0 <= guidance <= 30:  # also refuses nan and inf
                raise InputError(f"{label} must be between 0 and 30; got {guidance}.")
        if self.eta is not None and not 0.0 <= self.eta <= 1.0:
            raise InputError(f"Eta must be between 0 and 1; got {self.eta}.")
        for label, text in (("prompt", self.prompt), ("negative prompt", self.negative_prompt),
                            ("Hires prompt", self.hires_prompt or ""),
                            ("Hires negative prompt", self.hires_negative_prompt or ""),
                            *((f"{part} {which}", text) for part, wanted in self.detail_passes()
                              for which, text in (("prompt", wanted.prompt), ("negative prompt",
                                                                              wanted.negative_prompt)))):
            if len(text) > MAX_PROMPT_CHARACTERS:
                raise InputError(f"The {label} is {len(text):,} characters; the limit is {MAX_PROMPT_CHARACTERS:,} "
                                 "(about 600 tokens are read). Shorten it.")
        if not 1 <= self.clip_skip <= MAX_CLIP_SKIP:
            raise InputError(f"Clip skip must be between 1 (the text encoder's last layer) and {MAX_CLIP_SKIP}; "
                             f"got {self.clip_skip}.")
        if not 1 <= self.batch_size <= 64:
            raise InputError(f"Batch size must be between 1 and 64; got {self.batch_size}.")
        if not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"Seed must be between 0 and 2^63-1; got {self.seed}.")
        self._validate_variation()
        if self.timesteps is not None and (not self.timesteps or any(not 0 <= t < 1000 for t in self.timesteps)):
            raise InputError("Timesteps must be a non-empty list of integers between 0 and 999.")
        if (self.preview == Preview.TAESD or self.decoder == Decoder.TAESD) and not self.taesd:
            raise InputError("A TAESD preview or decode needs the TAESD weights; install TAESD or choose another.")
        self._validate_images()
        self._validate_hires()
        self._validate_tiles()
        for part, wanted in self.detail_passes():
            wanted.validate(part)
        if self.detail_only and (self.init_image is None or not self.detail_passes() or self.mask_image is not None
                                 or self.hires_scale is not None or self.batch_size != 1):
            raise InputError("Detailing a picture alone makes its faces or hands again and nothing else: it takes one "
                             "init image (no mask, Hires fix or batch) and Detail faces or Detail hands on.")

    def _validate_variation(self) -> None:
        if not 0.0 <= self.variation_strength <= 1.0:  # also refuses nan
            raise InputError(f"The variation strength must be between 0 and 1; got {self.variation_strength}.")
        if self.variation_seed is not None and not 0 <= self.variation_seed <= MAX_SEED:
            raise InputError(f"The variation seed must be between 0 and 2^63-1; got {self.variation_seed}.")
        if self.varied and self.variation_seed is None:
            raise InputError("A variation strength needs a variation seed to vary the image by.")

    def _validate_hires(self) -> None:
        if self.hires_scale is None:
            if self.hires_steps is not None:
                raise InputError("Hires steps are the steps of a Hires fix's second pass; choose its scale too (above "
                                 "1; --hires SCALE on the command line), or leave the Hires steps out.")
            if self.hires_prompt or self.hires_negative_prompt:
                raise InputError("A Hires prompt is the prompt of a Hires fix's second pass; choose its scale too "
                                 "(above 1; --hires SCALE on the command line), or leave the Hires prompt out.")
            if self.hires_guidance is not None:
                raise InputError("Hires guidance is the guidance of a Hires fix's second pass; choose its scale too "
                                 "(above 1; --hires SCALE on the command line), or leave the Hires guidance out.")
            return
        if not 1.0 < self.hires_scale <= MAX_HIRES_SCALE:
            raise InputError(f"The Hires fix scale must be above 1 and at most {MAX_HIRES_SCALE:g}; got "
                             f"{self.hires_scale}.")
        if not 0.0 < self.hires_strength <= 1.0:
            raise InputError(f"The Hires fix strength must be above 0 and at most 1; got {self.hires_strength}.")
        if self.hires_steps is not None and not 1 <= self.hires_steps <= MAX_STEPS:
            raise InputError(f"Hires steps must be between 1 and {MAX_STEPS}; got {self.hires_steps}.")
        if self.init_image is not None:
            raise InputError("Hires fix enlarges an image made from the prompt (and ControlNets), as A1111's does; "
                             "with an init image, ask for a larger size instead (the init image's Enlarge in the "
                             "window, --enlarge on the command line), or leave Hires fix off.")
        if self.width and self.height and max(self.width, self.height) * self.hires_scale > MAX_SIDE:
            raise InputError(f"Hires fix would make {self.width} × {self.height} over {MAX_SIDE} pixels on a side; "
                             "choose a smaller scale or size.")

    def _validate_tiles(self) -> None:
        if self.repaint_tile is None:
            if self.seams_fix is not None:
                raise InputError("A seams fix repaints the seams between a repaint's tiles; choose the tiles (In "
                                 "tiles, --tiles) or leave the seams fix out.")
            return
        if self.seams_fix is not None:
            self.seams_fix.validate()
        if not MIN_REPAINT_TILE <= self.repaint_tile <= MAX_REPAINT_TILE or self.repaint_tile % 8:
            raise InputError(f"A repaint's tiles are {MIN_REPAINT_TILE} to {MAX_REPAINT_TILE} pixels a side, a "
                             f"multiple of 8; got {self.repaint_tile}.")
        if not 0 <= self.tile_padding <= MAX_TILE_PADDING:
            raise InputError(f"The picture around a tile is 0 to {MAX_TILE_PADDING} pixels; got {self.tile_padding}.")
        if not 0 <= self.tile_mask_blur <= MAX_TILE_MASK_BLUR:
            raise InputError(f"A tile's mask blur is 0 to {MAX_TILE_MASK_BLUR} pixels; got {self.tile_mask_blur}.")
        if self.hires_scale is None and self.init_image is None:
            raise InputError("Tiles repaint a Hires fix's second pass or an init image made larger; choose a Hires "
                             "fix scale or an init image, or leave the tiles out.")
        if self.mask_image is not None:
            raise InputError("An inpainting repaints only where its mask is painted, whole; leave the tiles out.")
        if Tiling(self.tiling).wraps != (False, False):
            raise InputError("A seamless image is repainted whole, so that it wraps around its edges; leave the "
                             "tiles out.")

    def _validate_images(self) -> None:
        for label, digest in (("init image", self.init_image), ("mask", self.mask_image),
                              *(("control image", control.image) for control in self.controls),
                              *(("IP-Adapter's picture", adapter.image) for adapter in self.ip_adapters)):
            if digest is not None and not DIGEST.fullmatch(digest):
                raise InputError(f"The {label} must be named by the sha256 of its file (64 hex digits).")
        if not 0.0 < self.strength <= 1.0:
            raise InputError(f"Strength must be above 0 and at most 1; got {self.strength}.")
        if self.mask_image is not None and self.init_image is None:
            raise InputError("A mask needs an init image to paint into; add one, or remove the mask.")
        if not 0 <= self.mask_blur <= 64:
            raise InputError(f"Mask blur must be between 0 and 64 pixels; got {self.mask_blur}.")
        if self.masked_padding is not None:
            if self.mask_image is None:
                raise InputError("Inpainting only the masked area needs a mask; paint one, or inpaint the whole "
                                 "picture.")
            if not 0 <= self.masked_padding <= MAX_MASKED_PADDING:
                raise InputError(f"The padding around the masked area must be between 0 and {MAX_MASKED_PADDING} "
                                 f"pixels; got {self.masked_padding}.")
        for control in self.controls:
            if control.preprocessor == Preprocessor.INPAINT and (self.init_image is None
                                                                  or control.image != self.init_image):
                raise InputError("An inpainting ControlNet repaints the init image where the mask is painted: its "
                                 "picture is the init image. Choose an init image (and paint a mask), or another "
                                 "preprocessor.")
            if not 0.0 <= control.scale <= 2.0:
                raise InputError(f"A ControlNet's scale must be between 0 and 2; got {control.scale}.")
            if not 0.0 <= control.start < control.end <= 1.0:
                raise InputError(f"A ControlNet's start and end must satisfy 0 ≤ start < end ≤ 1; got "
                                 f"{control.start} and {control.end}.")

        for adapter in self.ip_adapters:
            if not 0.0 <= adapter.scale <= 2.0:  # also refuses nan
                raise InputError(f"An IP-Adapter's scale must be between 0 and 2; got {adapter.scale}.")
        if len({adapter.encoder for adapter in self.ip_adapters}) > 1:
            raise InputError("IP-Adapters that run together read their pictures with one image encoder; choose the "
                             "same encoder for each, or leave one out.")

    def replace(self, **changes: Any) -> GenerationRequest:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The request as JSON data (the form stored in PNGs and sent to the worker)."""
        return to_data(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GenerationRequest:
        """A request from its JSON text (as stored in PNGs and gallery rows); `InputError` when damaged."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise InputError("This request cannot be read: it is not JSON.") from None
        if not isinstance(data, dict):
            raise InputError("This request cannot be read: it is not a JSON object.")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        """A request from JSON data; unknown keys (from a newer version) are ignored.

        Raises `InputError` for data that is no request: a wrong type, or a value out of range.
        """
        try:
            return from_data(cls, data, where="request")
        except CodecError as error:
            raise InputError(f"This request cannot be read: {error}.") from None


_VOCABULARIES: dict[str, type[Enum]] = {
    "scheduler": Scheduler, "device": Device, "dtype": DType, "preview": Preview, "decoder": Decoder,
    "tiling": Tiling,
}


@dataclass(frozen=True)
class ResolvedSettings:
    """What the engine actually ran, after the recipe filled in what the request left open."""

    recipe: str | None
    architecture: Architecture
    scheduler: Scheduler
    steps: int
    guidance: float
    eta: float | None
    timesteps: tuple[int, ...] | None
    width: int
    height: int
    device: Device
    dtype: DType
    backend: str = "torch"


@dataclass(frozen=True)
class Progress:
    """One denoising step done. `preview` is an RGB image (PIL) when previews were asked for.

    Work before the first step that takes long enough to show (an ONNX export on first use) is
    reported with `stage` naming it and `step` of `total_steps` counting its parts.
    """

    step: int
    total_steps: int
    image_index: int = 0
    batch_size: int = 1
    preview: Any = None
    elapsed_s: float = 0.0
    stage: str = ""


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
    variation_seed: int | None = None  # the variation seed that varied this image, with the request's strength

    def image_request(self) -> GenerationRequest:
        """The one-image request that makes this image again."""
        return self.request.replace(seed=self.seed, batch_size=1,
                                    variation_seed=self.variation_seed if self.request.varied else
                                    self.request.variation_seed)
