"""The messages between the GUI process and the generation worker process.

Plain frozen dataclasses sent over a `multiprocessing` pipe between our own two processes.
Requests travel as `GenerationRequest.to_dict()`, previews as PNG bytes, images as the path of
the PNG the worker wrote (and indexed in the gallery), so no torch type ever crosses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# GUI -> worker


@dataclass(frozen=True)
class RunJob:
    job_id: int
    request: dict[str, Any]
    preview: bool = True


@dataclass(frozen=True)
class RunBatch:
    """A batch job (`batch.BatchSpec`): generated into the gallery and exported, one unit at a time."""

    job_id: int
    spec: Any


@dataclass(frozen=True)
class CancelJob:
    job_id: int


@dataclass(frozen=True)
class Shutdown:
    pass


# worker -> GUI


@dataclass(frozen=True)
class WorkerReady:
    """Sent once the worker has imported the engine: what it will run on."""

    devices: tuple[str, ...]
    default_device: str


@dataclass(frozen=True)
class JobStarted:
    job_id: int


@dataclass(frozen=True)
class JobProgress:
    job_id: int
    step: int
    total_steps: int
    elapsed_s: float
    preview_png: bytes | None = None


@dataclass(frozen=True)
class ImageReady:
    job_id: int
    index: int
    path: str
    image_id: int | None
    seed: int
    settings: dict[str, Any]
    timings: dict[str, float]


@dataclass(frozen=True)
class JobFinished:
    job_id: int
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    memory_bytes: int | None = None
    device: str = ""
    dtype: str = ""


@dataclass(frozen=True)
class BatchProgress:
    """`done` of `total` units of a batch finished (including those an earlier run did)."""

    job_id: int
    done: int
    total: int
    rate: float | None = None  # units per second
    eta_s: float | None = None


@dataclass(frozen=True)
class BatchFinished:
    job_id: int
    generated: int
    skipped: int
    manifest: str
    seconds: float = 0.0


@dataclass(frozen=True)
class JobFailed:
    """`cancelled` for a user cancel; otherwise `message` says what happened and what to do."""

    job_id: int
    message: str
    cancelled: bool = False
    details: str = field(default="", compare=False)
