"""The messages between the app and the generation worker program (protocol version 2: 1 and `MakeMap`).

Each message is a frozen dataclass with a wire name. They cross as JSON written by the one
codec (`core.codec`), with bytes fields (previews, finished images, input images) as binary
frames after it (`worker.wire`), so the worker can be another interpreter than the app — the
compute runtime the packaged app installs — and later another machine.

The conversation: the app sends `Hello` and the worker answers `WorkerReady` (its protocol and
package versions, backends and devices) or `WorkerRefused`. Then the app sends jobs one at a
time (`RunJob`, `RunBatch`, `RunPlot`, `MakeMap`, `EnlargeImage`, `DescribeImage`), `CancelJob` at any moment,
and `Shutdown`. For each job the worker sends `JobStarted`, then `JobProgress`/`BatchProgress`,
`ImageReady` per image (`MapReady` for a map, `Described` for a picture's tags), and ends it with exactly one of
`JobFinished`, `BatchFinished` or `JobFailed`. Between and during jobs the worker may send `EngineNotice`: what an engine says outside any job (a background compile).

Image inputs (init images, masks, control images) are named in requests by the sha256 of their
bytes; the app sends each one once to a worker process, as `PutImage` before the first job that
names it. The worker holds them in memory, and writes one to its input folder only when an image
made from it is saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypersd_desktop.core.vocab import Device, DType, MapKind
from hypersd_desktop.engine.backend import BackendInfo
from hypersd_desktop.engine.plot import PlotSpec
from hypersd_desktop.engine.tagger import CHARACTER_THRESHOLD, THRESHOLD, Description
from hypersd_desktop.engine.types import AUTO_BACKEND, GenerationRequest
from hypersd_desktop.worker.batch import BatchSpec

# 2: control maps (`MakeMap`), which a worker of protocol 1 would leave unanswered; 3: pose maps; 4: `EnlargeImage`;
# 5: `RunPlot`; 6: a plot's Z axis; 7: its Styles axis (the styles it adds, in `PlotAxis.styles`); 8: `DescribeImage`;
# 9: a batch unit's maps of its picture (`BatchUnit.maps`), and the unit a `BatchProgress` names
PROTOCOL_VERSION = 9

MESSAGES: dict[str, type] = {}


def message(name: str):
    """Register a message class under its wire name."""

    def register(cls: type) -> type:
        cls.kind = name
        MESSAGES[name] = cls
        return cls

    return register


# app -> worker


@message("hello")
@dataclass(frozen=True)
class Hello:
    """The app's first message. `backend` and `device` are what its settings will ask for: the
    worker opens that engine while it waits for the first job."""

    protocol: int
    version: str
    backend: str = AUTO_BACKEND
    device: Device = Device.AUTO


@message("run")
@dataclass(frozen=True)
class RunJob:
    """Generate `request`; with `previews`, step previews are sent when the request asks for none. Without
    `save` the images are sent and not written (the Draw tab's live images: only the one kept is saved). With
    `each`, the job's images are one for each of its one-image requests, made as one batch (a dynamic prompt's,
    each with its own choices); `request` is the first of them."""

    job_id: int
    request: GenerationRequest
    previews: bool = True
    save: bool = True
    each: tuple[GenerationRequest, ...] = ()


@message("run-batch")
@dataclass(frozen=True)
class RunBatch:
    """A batch job: generated into the gallery and exported, one unit at a time."""

    job_id: int
    spec: BatchSpec


@message("run-plot")
@dataclass(frozen=True)
class RunPlot:
    """An X/Y/Z plot (engine/plot.py): each image saved and sent as `ImageReady`, then its grid; `JobProgress` counts
    the images made (stage `PLOT_STAGE`)."""

    job_id: int
    spec: PlotSpec


@dataclass(frozen=True)
class ControlMap:
    """A map a ControlNet follows, made by a model from input image `image` (a digest): `kind` "depth", a depth map
    made with the depth-estimation model at `model` (engine/depth.py); "pose", an OpenPose picture of the people
    that the person detector at `detector` finds, posed by the pose model at `model` (engine/pose.py)."""

    image: str
    model: str
    kind: str = MapKind.DEPTH.value
    detector: str = ""


@message("make-map")
@dataclass(frozen=True)
class MakeMap:
    """Make `map` on `device`; answered with `MapReady`, then `JobFinished` (or `JobFailed`)."""

    job_id: int
    map: ControlMap
    device: Device = Device.AUTO


@dataclass(frozen=True)
class Enlargement:
    """An image file enlarged `scale` times and not repainted, as A1111's Extras tab enlarges one: by the upscaler
    model at `upscaler` (engine/upscalers.py), or by Lanczos where it is None. The enlarged image keeps the file's
    metadata and is saved into the gallery beside it."""

    path: str
    scale: float
    upscaler: str | None = None


@message("enlarge")
@dataclass(frozen=True)
class EnlargeImage:
    """Make `enlargement` on `device`; answered with `ImageReady`, then `JobFinished` (or `JobFailed`)."""

    job_id: int
    enlargement: Enlargement
    device: Device = Device.AUTO


@dataclass(frozen=True)
class Describing:
    """Input image `image` (a digest) described in booru tags by the tagger at `tagger` (engine/tagger.py): the
    tags scored over `threshold` (a character's over `character_threshold`)."""

    image: str
    tagger: str
    threshold: float = THRESHOLD
    character_threshold: float = CHARACTER_THRESHOLD


@message("describe")
@dataclass(frozen=True)
class DescribeImage:
    """Describe a picture; answered with `Described`, then `JobFinished` (or `JobFailed`)."""

    job_id: int
    describing: Describing
    device: Device = Device.AUTO


@message("put-image")
@dataclass(frozen=True)
class PutImage:
    """An input image for later requests, named by the sha256 hex digest of `data`."""

    digest: str
    data: bytes


@message("cancel")
@dataclass(frozen=True)
class CancelJob:
    job_id: int


@message("shutdown")
@dataclass(frozen=True)
class Shutdown:
    """Exit once the running job (if any) has ended."""


# worker -> app


@message("ready")
@dataclass(frozen=True)
class WorkerReady:
    """The handshake's answer: versions, and what the worker can run on (from the backends' probes).
    `default_backend` and `default_device` are what the hello's backend and device resolve to."""

    protocol: int
    version: str
    python: str
    backends: tuple[BackendInfo, ...]
    devices: tuple[Device, ...]
    default_device: Device
    default_backend: str = ""


@message("refused")
@dataclass(frozen=True)
class WorkerRefused:
    """The worker cannot serve this app (another protocol version); it exits after sending this."""

    protocol: int
    version: str
    message: str


@message("started")
@dataclass(frozen=True)
class JobStarted:
    job_id: int


@message("progress")
@dataclass(frozen=True)
class JobProgress:
    """A denoising step done; `preview` is an encoded image (PNG or JPEG) when one was made. With
    `stage` set, the steps count the parts of work before denoising (an ONNX export)."""

    job_id: int
    step: int
    total_steps: int
    elapsed_s: float
    preview: bytes | None = None
    stage: str = ""


@message("image")
@dataclass(frozen=True)
class ImageReady:
    """One finished image: saved at `path`, indexed as gallery image `image_id`; `png` is the file's
    bytes, so the app shows it without reading the disk (the worker may be elsewhere). For a job run
    without saving, `path` is empty and `image_id` None, and `png` is the file that would have been written.
    `load_s` is the time the job spent loading its model."""

    job_id: int
    index: int
    seed: int
    path: str
    image_id: int | None
    png: bytes
    load_s: float = 0.0


@message("map")
@dataclass(frozen=True)
class MapReady:
    """The map a `MakeMap` asked for, as PNG bytes."""

    job_id: int
    map: ControlMap
    png: bytes


@message("described")
@dataclass(frozen=True)
class Described:
    """The tags a `DescribeImage` asked for."""

    job_id: int
    describing: Describing
    description: Description


@message("finished")
@dataclass(frozen=True)
class JobFinished:
    job_id: int
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    memory_bytes: int | None = None
    device: Device = Device.CPU
    dtype: DType = DType.FP32
    backend: str = ""


@message("batch-progress")
@dataclass(frozen=True)
class BatchProgress:
    """`done` of `total` units of a batch finished (including those an earlier run did); `item` names the last: its
    picture (a job from pictures), else its prompt."""

    job_id: int
    done: int
    total: int
    rate: float | None = None  # units per second
    eta_s: float | None = None
    item: str = ""


@message("batch-finished")
@dataclass(frozen=True)
class BatchFinished:
    job_id: int
    generated: int
    skipped: int
    manifest: str
    seconds: float = 0.0


@message("failed")
@dataclass(frozen=True)
class JobFailed:
    """`cancelled` for a user cancel; otherwise `message` says what happened and what to do. `not_saved` when the
    job made images the disk could not take (full, or a drive gone): the app then holds its queued jobs that save,
    rather than make each one and keep it in memory."""

    job_id: int
    message: str
    cancelled: bool = False
    details: str = field(default="", compare=False)
    not_saved: bool = False


@message("notice")
@dataclass(frozen=True)
class EngineNotice:
    """What an engine says outside any job (engine/notices.py); `busy` while the work it speaks of goes on."""

    text: str
    busy: bool = False


JOB_ENDS = (JobFinished, JobFailed, BatchFinished)
