"""The app's vocabularies, each defined once as an enum.

They are `str` enums: a member equals its text (`Architecture.SDXL == "sdxl"`), so values read
from JSON, SQLite or a command line compare and serialise as before, while the code names
them and their properties in one place.
"""

from __future__ import annotations

from enum import Enum


class TextEnum(str, Enum):
    """An enum whose members are their text; `str()` and f-strings give the text too."""

    def __str__(self) -> str:
        return self.value

    def __hash__(self) -> int:  # Enum hashes the member's name; a member must hash as the text it equals
        return str.__hash__(self)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(member.value for member in cls)


class Architecture(TextEnum):
    """The base model family a weights file belongs to."""

    SD15 = "sd15"
    SDXL = "sdxl"

    @property
    def label(self) -> str:
        return {"sd15": "SD1.5", "sdxl": "SDXL"}[self.value]

    @property
    def default_size(self) -> int:
        """The side of the square images the family was trained at."""
        return 1024 if self is Architecture.SDXL else 512


def architecture_label(value: str | None) -> str:
    """"SD1.5" or "SDXL" for a stored architecture; "?" when unknown."""
    try:
        return Architecture(value).label
    except ValueError:
        return "?"


class ModelLayout(TextEnum):
    """How a model is stored: one weights file, or a diffusers folder."""

    FILE = "file"
    DIFFUSERS = "diffusers"


class ModelKind(TextEnum):
    """What an installed or downloadable file is."""

    BASE = "base"
    LORA = "lora"
    UNET = "unet"
    VAE = "vae"
    TAESD = "taesd"
    CONTROLNET = "controlnet"
    EMBEDDING = "embedding"  # a textual-inversion embedding, applied where its name is in a prompt
    DEPTH = "depth"  # a depth-estimation model (Depth Anything), which makes depth maps of photos for ControlNets
    POSE = "pose"  # a pose model (ViTPose), which finds people's keypoints in photos for OpenPose ControlNets
    DETECTOR = "detector"  # a person detector (RT-DETR), which finds the people a pose model reads
    UPSCALER = "upscaler"  # an ESRGAN, SPAN, DAT … model, which enlarges a picture before it is repainted
    IP_ADAPTER = "ip-adapter"  # an IP-Adapter, which steers an image by a picture, as a prompt does by words
    IMAGE_ENCODER = "image-encoder"  # a CLIP image encoder, which reads the picture for an IP-Adapter
    TAGGER = "tagger"  # a WD tagger (an ONNX model and its tag list), which describes a picture in booru tags


# Kinds that, naming no architecture, serve SD1.5 and SDXL alike: a VAE file that does not say, the models that make
# control maps from photos, upscalers, taggers.
EITHER_ARCHITECTURE_KINDS = (ModelKind.VAE, ModelKind.DEPTH, ModelKind.POSE, ModelKind.DETECTOR, ModelKind.UPSCALER,
                             ModelKind.IMAGE_ENCODER, ModelKind.TAGGER)
MASK_MERGES = ("none", "merge", "merge and invert")  # a detail pass's masks (ADetailer's "mask merge mode", lower case)
MAX_DILATE_ERODE = 128  # pixels a detail pass's mask grows (shrinks) by, ADetailer's range
MAX_MASK_OFFSET = 200  # pixels it moves by, each way
# The upscaler architectures the app runs (engine/upscaler_files.py), as its messages name them
UPSCALER_FAMILIES = ("ESRGAN", "Real-ESRGAN", "SPAN", "RealPLKSR", "DAT", "HAT", "SwinIR")


def upscaler_families(last: str = "or") -> str:
    """"ESRGAN, Real-ESRGAN, SPAN, RealPLKSR, DAT, HAT or SwinIR"."""
    return f"{', '.join(UPSCALER_FAMILIES[:-1])} {last} {UPSCALER_FAMILIES[-1]}"


class Device(TextEnum):
    """Where an engine runs. Which devices exist here is a backend's answer, not this list's."""

    AUTO = "auto"
    CUDA = "cuda"
    MPS = "mps"
    DIRECTML = "directml"
    CPU = "cpu"

    @property
    def is_gpu(self) -> bool:
        return self in (Device.CUDA, Device.MPS, Device.DIRECTML)

    @property
    def label(self) -> str:
        """The device as people name it: "CUDA", "Apple MPS", "DirectML", "CPU"."""
        return {Device.AUTO: "Automatic", Device.MPS: "Apple MPS", Device.DIRECTML: "DirectML"}.get(self, self.upper())


class DType(TextEnum):
    AUTO = "auto"
    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"


class Scheduler(TextEnum):
    """The denoising schedulers the Hyper-SD recipes use; BASE is the base model's own."""

    AUTO = "auto"
    DDIM_TRAILING = "ddim-trailing"
    TCD = "tcd"
    LCM = "lcm"
    BASE = "base"

    @property
    def label(self) -> str:
        """The scheduler in words: "TCD", "DDIM (trailing)", "the model's own"."""
        return {Scheduler.AUTO: "Automatic", Scheduler.DDIM_TRAILING: "DDIM (trailing)",
                Scheduler.BASE: "the model's own"}.get(self, self.upper())


class Preview(TextEnum):
    NONE = "none"
    LATENT = "latent"
    TAESD = "taesd"


class Decoder(TextEnum):
    VAE = "vae"
    TAESD = "taesd"


class Tiling(TextEnum):
    """Which way an image repeats seamlessly (A1111's "Tiling", InvokeAI's seamless X and Y): its left edge
    continues its right one, its top edge its bottom one, or both, so copies laid side by side show no seam."""

    OFF = "off"
    BOTH = "both"
    X = "x"  # left to right
    Y = "y"  # top to bottom

    @property
    def wraps(self) -> tuple[bool, bool]:
        """Whether it wraps across (x) and down (y)."""
        return self in (Tiling.BOTH, Tiling.X), self in (Tiling.BOTH, Tiling.Y)

    @property
    def label(self) -> str:
        return {"off": "off", "both": "both ways", "x": "left to right", "y": "top to bottom"}[self.value]

    @property
    def repeats(self) -> tuple[int, int]:
        """The copies across and down the window shows of such an image, to judge its seams: 3 × 3 both ways."""
        return {"off": (1, 1), "both": (3, 3), "x": (3, 1), "y": (1, 3)}[self.value]


class SeamFix(TextEnum):
    """How the seams between a repaint's tiles are repainted once every tile is (the Ultimate SD Upscale extension's
    "Seams fix"): a band across each seam, the picture's whole length; a tile's size centred on each seam between
    two tiles; or those and one on each point where four tiles meet."""

    BAND = "band"
    HALF_TILE = "half-tile"
    HALF_TILE_CORNERS = "half-tile+corners"

    @property
    def label(self) -> str:
        """As the extension names it (its ComfyUI node: "Band Pass", "Half Tile", "Half Tile + Intersections")."""
        return {"band": "Band pass", "half-tile": "Half tile offset pass",
                "half-tile+corners": "Half tile offset pass + intersections"}[self.value]


class Mode(TextEnum):
    """What a generation starts from; backends list the modes they run. ControlNets go with any of them."""

    TEXT_TO_IMAGE = "txt2img"
    IMAGE_TO_IMAGE = "img2img"
    INPAINT = "inpaint"

    @property
    def label(self) -> str:
        return {"txt2img": "text-to-image", "img2img": "image-to-image", "inpaint": "inpainting"}[self.value]


class MapKind(TextEnum):
    """A map of a photo that a model makes for a ControlNet (in the worker: they need torch)."""

    DEPTH = "depth"  # its depth, near is light (a depth-estimation model)
    POSE = "pose"  # its people's pose, as OpenPose draws it (a pose model and a person detector)


class Preprocessor(TextEnum):
    """How a control image is made from the picture a request names; NONE: the picture is the control image.
    INPAINT: the init image with the request's mask left open, as an inpainting ControlNet sees it (A1111's
    "inpaint_only"; the control's picture is the init image)."""

    NONE = "none"
    SCRIBBLE = "scribble"
    INPAINT = "inpaint"


class ControlType(TextEnum):
    """What a control image is, for a ControlNet Union model (xinsir's, which one network runs for all of these);
    in the order of the model's control types: its index is the type's number in the model."""

    OPENPOSE = "openpose"
    DEPTH = "depth"
    SOFTEDGE = "softedge"  # thick lines: scribbles, HED, PiDiNet, TEED soft edges
    CANNY = "canny"  # thin lines: Canny edges, line art, anime line art, MLSD
    NORMAL = "normal"
    SEGMENT = "segment"
    TILE = "tile"  # ProMax only
    REPAINT = "repaint"  # ProMax only

    @property
    def index(self) -> int:
        return list(ControlType).index(self)

    @property
    def label(self) -> str:
        return {"openpose": "Pose (OpenPose)", "depth": "Depth map", "softedge": "Scribble or soft edges",
                "canny": "Canny edges or line art", "normal": "Normal map", "segment": "Segmentation",
                "tile": "Tile", "repaint": "Repaint"}[self.value]


class ImageSource(TextEnum):
    """How an image came into the gallery."""

    GENERATED = "generated"
    IMPORTED = "imported"


class ExportFormat(TextEnum):
    PNG = "png"
    JPEG = "jpeg"
    WEBP = "webp"
    AVIF = "avif"  # about half a JPEG's size at the same look; A1111 and Forge save it too

    @property
    def suffix(self) -> str:
        return {"png": ".png", "jpeg": ".jpg"}.get(self.value, f".{self.value}")


class CollisionRule(TextEnum):
    """What an export does when its target file exists."""

    SKIP = "skip"
    OVERWRITE = "overwrite"
    NUMBER = "number"  # write "name (2).png"


class ExportStatus(TextEnum):
    """What happened to one image of an export (failures carry their reason beside it)."""

    WRITTEN = "written"
    SKIPPED_EXISTS = "skipped (exists)"
    FAILED = "failed"


class WeightsKind(TextEnum):
    """What a weights file holds, as its header tells (`engine.inspect`)."""

    CHECKPOINT = "checkpoint"
    UNET = "unet"
    VAE = "vae"
    TAESD = "taesd"
    LORA = "lora"
    CONTROLNET = "controlnet"
    TEXT_ENCODER = "text_encoder"
    EMBEDDING = "embedding"
    UPSCALER = "upscaler"
    IP_ADAPTER = "ip_adapter"
    IMAGE_ENCODER = "image_encoder"
    UNKNOWN = "unknown"

    @property
    def phrase(self) -> str:
        """The kind in a sentence: "a full checkpoint", "a UNet", …"""
        return _WEIGHTS_PHRASES[self]


_WEIGHTS_PHRASES = {
    WeightsKind.CHECKPOINT: "a full checkpoint", WeightsKind.UNET: "a UNet", WeightsKind.VAE: "a VAE",
    WeightsKind.TAESD: "a TAESD decoder", WeightsKind.LORA: "a LoRA", WeightsKind.CONTROLNET: "a ControlNet",
    WeightsKind.TEXT_ENCODER: "a text encoder",
    WeightsKind.EMBEDDING: "a textual-inversion embedding", WeightsKind.UPSCALER: "an upscaler",
    WeightsKind.IP_ADAPTER: "an IP-Adapter", WeightsKind.IMAGE_ENCODER: "a CLIP image encoder",
    WeightsKind.UNKNOWN: "no kind of weights this app knows",
}


class ImportStatus(TextEnum):
    """What importing one file or folder into the model library did."""

    IMPORTED = "imported"
    ALREADY = "already installed"
    REFUSED = "refused"
    BROKEN = "broken"
    UNSUPPORTED = "unsupported"


class BatchUnitState(TextEnum):
    """Where one unit of a batch job stands, in the job's state file."""

    PLANNED = "planned"  # its export path is chosen; the image may not be written yet
    DONE = "done"
