"""The worker program: owns the engines and their loaded models, runs one job at a time.

Started as `python -m hypersd_desktop.worker` under any interpreter that has the package
installed (the app's own, or a compute runtime beside a packaged app). It speaks the protocol
of `worker.protocol` on its stdin and stdout; whatever else writes to stdout (a library's print)
is sent to stderr instead, so it cannot corrupt a message. A reader thread receives messages
while a job runs, so a cancel reaches the engine's step callback at once. Any failure is sent
back as `JobFailed` with a message a person can act on; the traceback goes to the worker log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import logging
import os
import platform
import queue
import sys
import threading
import time
import traceback
from typing import BinaryIO

from hypersd_desktop import __version__
from hypersd_desktop.core.errors import AppError, CancelledError, InputError, NotSavedError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.core.logs import setup_logging
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.progress import CancelToken
from hypersd_desktop.core.vocab import Device, DType, Preview
from hypersd_desktop.engine import backend as backends
from hypersd_desktop.engine import notices
from hypersd_desktop.engine.types import Progress
from hypersd_desktop.worker.protocol import (
    PROTOCOL_VERSION, BatchFinished, BatchProgress, CancelJob, Described, DescribeImage, EnlargeImage, EngineNotice,
    Hello, ImageReady, JobFailed, JobFinished, JobProgress, JobStarted, MakeMap, MapReady, PutImage, RunBatch, RunJob,
    RunPlot, Shutdown, WorkerReady, WorkerRefused,
)
from hypersd_desktop.worker.wire import MessageWriter, ProtocolError, read_message

log = logging.getLogger("hypersd.worker")
PREVIEW_INTERVAL_S = 0.05
EXIT_REFUSED = 3
EXIT_PROTOCOL_ERROR = 4


def protocol_streams() -> tuple[BinaryIO, BinaryIO]:
    """stdin and a private copy of stdout for the protocol; file descriptor 1 becomes stderr.

    Both are unbuffered: a buffered stdin's lock, held by the reader thread blocked in a read,
    aborts the interpreter when it exits.
    """
    sys.stdout.flush()
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return open(sys.stdin.fileno(), "rb", buffering=0, closefd=False), out


def ready_message(hello: Hello | None = None) -> WorkerReady:
    infos = tuple(backends.probe_all())
    devices = tuple(dict.fromkeys(device for info in infos for device in info.devices))
    try:
        backend, device = backends.resolve(hello.backend if hello else "auto", hello.device if hello else "auto")
        default = (device, backend.name)
    except InputError:  # the first job says what is wrong
        default = (devices[0] if devices else Device.CPU, "")
    return WorkerReady(PROTOCOL_VERSION, __version__, f"{platform.python_implementation()} {platform.python_version()}",
                       infos, devices, *default)


class Worker:
    """One worker: reads messages from `incoming`, answers on `outgoing`."""

    def __init__(self, incoming: BinaryIO, outgoing: BinaryIO, paths: AppPaths) -> None:
        self.incoming = incoming
        self.out = MessageWriter(outgoing)
        self.paths = paths
        self.inbox: queue.Queue = queue.Queue()
        self.cancels: dict[int, CancelToken] = {}
        self.inputs = InputImages(paths.inputs)  # the input images jobs name: held in memory, kept when saved
        self.batch_sizer = None  # how many images of a batch job run at once (a BatchSizer), learnt across jobs
        self.lock = threading.Lock()
        self._service = None

    @property
    def service(self):
        """The generation service, made on first use (it opens the gallery and the model hashes)."""
        if self._service is None:
            from hypersd_desktop.gallery.gallery import Gallery
            from hypersd_desktop.models.library import ModelLibrary
            from hypersd_desktop.worker.service import GenerationService

            self._service = GenerationService(self.paths, Gallery(self.paths), ModelLibrary(self.paths).hash_cache(),
                                              inputs=self.inputs)
        return self._service

    def serve(self) -> int:
        """The handshake, then jobs until `Shutdown` or the end of input. Returns the exit status."""
        try:
            hello = read_message(self.incoming)
        except (EOFError, ProtocolError) as error:
            log.error("no handshake: %s", error)
            return EXIT_PROTOCOL_ERROR
        if not isinstance(hello, Hello) or hello.protocol != PROTOCOL_VERSION:
            seen = f"protocol {hello.protocol} (app {hello.version})" if isinstance(hello, Hello) else type(hello).kind
            self.out.send(WorkerRefused(PROTOCOL_VERSION, __version__,
                                        f"This worker (HyperSD Desktop {__version__}) speaks protocol "
                                        f"{PROTOCOL_VERSION}; the app spoke {seen}."))
            return EXIT_REFUSED
        self.out.send(ready_message(hello))
        notices.listen(lambda text, busy: self.out.send(EngineNotice(text, busy)))
        threading.Thread(target=self._read, name="worker-reader", daemon=True).start()
        self._warm_up(hello)
        while True:
            message = self.inbox.get()
            if isinstance(message, (Shutdown, ProtocolError)):
                if self._service is not None and self._service.gallery is not None:
                    self._service.gallery.close()
                return EXIT_PROTOCOL_ERROR if isinstance(message, ProtocolError) else 0
            with self.lock:
                token = self.cancels.setdefault(message.job_id, CancelToken())
            if isinstance(message, RunJob):
                self._run(message, token)
            elif isinstance(message, MakeMap):
                self._make_map(message, token)
            elif isinstance(message, EnlargeImage):
                self._enlarge(message, token)
            elif isinstance(message, DescribeImage):
                self._describe(message, token)
            elif isinstance(message, RunPlot):
                self._run_plot(message, token)
            else:
                self._run_batch(message, token)
            with self.lock:
                self.cancels.pop(message.job_id, None)

    def _warm_up(self, hello: Hello) -> None:
        """Open the engine the app's settings ask for now, while the person types the first prompt,
        rather than when the first image is asked for (torch and diffusers take seconds to import)."""
        try:
            self.service.engines.open(backends.choose(hello.backend, hello.device))
        except Exception:  # noqa: BLE001 - the first job reports what is wrong; warming up is a bonus
            log.warning("could not open the default engine ahead of the first job", exc_info=True)

    def _read(self) -> None:
        while True:
            try:
                message = read_message(self.incoming)
            except EOFError:
                self.inbox.put(Shutdown())
                return
            except (ProtocolError, OSError) as error:
                log.error("unreadable message from the app: %s", error)
                self.inbox.put(ProtocolError(str(error)))
                return
            if isinstance(message, CancelJob):
                with self.lock:
                    self.cancels.setdefault(message.job_id, CancelToken()).cancel()
            elif isinstance(message, PutImage):
                self._keep_image(message)
            elif isinstance(message, (RunJob, RunBatch, RunPlot, MakeMap, EnlargeImage, DescribeImage, Shutdown)):
                self.inbox.put(message)
            else:
                log.warning("ignored a %s message", type(message).kind)

    def _keep_image(self, message: PutImage) -> None:
        """Hold an input image for the jobs that name it; one that is damaged or no image is left out, and the
        job that names it fails saying the image is not here."""
        if hashlib.sha256(message.data).hexdigest() != message.digest:
            log.error("input image %s arrived damaged; ignored", message.digest)
            return
        try:
            self.inputs.hold(message.data)
        except InputError as error:
            log.error("input image %s refused: %s", message.digest, error)

    # -- jobs ---------------------------------------------------------------------------

    def _run(self, job: RunJob, token: CancelToken) -> None:
        started = time.perf_counter()
        last_preview = [0.0]

        def on_progress(progress: Progress) -> None:
            preview = None
            now = time.perf_counter()
            if progress.preview is not None and (now - last_preview[0] >= PREVIEW_INTERVAL_S
                                                 or progress.step == progress.total_steps):
                buffer = io.BytesIO()
                progress.preview.save(buffer, format="PNG", compress_level=1)
                preview = buffer.getvalue()
                last_preview[0] = now
            self.out.send(JobProgress(job.job_id, progress.step, progress.total_steps, progress.elapsed_s, preview,
                                      progress.stage))

        with self._reported(job.job_id):
            self.out.send(JobStarted(job.job_id))
            token.raise_if_cancelled()
            asked = job.request
            request = asked.replace(preview=Preview.LATENT) if job.previews and asked.preview == Preview.NONE else asked
            if job.each:  # one image for each request, as one batch (whose previews show them all)
                runs = [each.replace(preview=request.preview) for each in job.each]
                made = self.service.run_together(runs, on_progress=on_progress, cancel=token,
                                                 on_saved=self._image_sender(job.job_id), stored=list(job.each),
                                                 on_unsaved=self._unsaved_sender(job.job_id))
                first = made[0].result
                warnings = tuple(dict.fromkeys(warning for image in made for warning in image.result.warnings))
            elif job.save:
                first = self.service.run(request, on_progress=on_progress, cancel=token,
                                         on_saved=self._image_sender(job.job_id), stored=asked,
                                         on_unsaved=self._unsaved_sender(job.job_id))[0].result
                warnings = first.warnings
            else:
                results = self.service.generate(request, on_progress, token)
                for result in results:
                    png = self.service.render(dataclasses.replace(result, request=asked))
                    self.out.send(ImageReady(job.job_id, result.index, result.seed, "", None, png,
                                             result.timings.get("load_s", 0.0)))
                first = results[0]
                warnings = first.warnings
            self.out.send(JobFinished(job.job_id, warnings, time.perf_counter() - started,
                                      self.service.memory_in_use(request, first.settings.device),
                                      first.settings.device, first.settings.dtype, first.settings.backend))

    def _progress_sender(self, job_id: int):
        """Sends a job's progress without previews (an enlargement's tiles, a plot's images)."""

        def on_progress(progress: Progress) -> None:
            self.out.send(JobProgress(job_id, progress.step, progress.total_steps, progress.elapsed_s, None,
                                      progress.stage))

        return on_progress

    def _image_sender(self, job_id: int):
        """Sends each image a job saved, as it is saved."""

        def on_saved(saved) -> None:
            result = saved.result
            self.out.send(ImageReady(job_id, result.index, result.seed, str(saved.path), saved.image_id, saved.png,
                                     result.timings.get("load_s", 0.0)))

        return on_saved

    def _unsaved_sender(self, job_id: int):
        """Sends an image the disk could not take: the window keeps it on screen, to save elsewhere."""

        def on_unsaved(result, png: bytes) -> None:
            self.out.send(ImageReady(job_id, result.index, result.seed, "", None, png,
                                     result.timings.get("load_s", 0.0)))

        return on_unsaved

    def _make_map(self, job: MakeMap, token: CancelToken) -> None:
        def answer():
            png, device = self.service.control_map(job.map, job.device)
            return MapReady(job.job_id, job.map, png), device

        self._answered(job.job_id, token, answer)

    def _describe(self, job: DescribeImage, token: CancelToken) -> None:
        def answer():
            description, device = self.service.describe(job.describing, job.device)
            return Described(job.job_id, job.describing, description), device

        self._answered(job.job_id, token, answer)

    def _answered(self, job_id: int, token: CancelToken, answer) -> None:
        """A job whose work is one answer (a map, a picture's tags): `answer()` gives the message and the device
        it ran on; `JobFinished` follows it."""
        started = time.perf_counter()
        with self._reported(job_id):
            self.out.send(JobStarted(job_id))
            token.raise_if_cancelled()
            message, device = answer()
            self.out.send(message)
            self.out.send(JobFinished(job_id, seconds=time.perf_counter() - started, device=device))

    def _enlarge(self, job: EnlargeImage, token: CancelToken) -> None:
        started = time.perf_counter()
        with self._reported(job.job_id):
            self.out.send(JobStarted(job.job_id))
            token.raise_if_cancelled()
            made = self.service.enlarge(job.enlargement, job.device, self._progress_sender(job.job_id), token)
            self.out.send(ImageReady(job.job_id, 0, made.seed, str(made.path), made.image_id, made.png))
            self.out.send(JobFinished(job.job_id, seconds=time.perf_counter() - started, device=made.device,
                                      dtype=DType.FP16 if made.half else DType.FP32))

    def _run_plot(self, job: RunPlot, token: CancelToken) -> None:
        started = time.perf_counter()
        with self._reported(job.job_id):
            self.out.send(JobStarted(job.job_id))
            token.raise_if_cancelled()
            made = self.service.plot(job.spec, self._progress_sender(job.job_id), token,
                                     self._image_sender(job.job_id), self._unsaved_sender(job.job_id))
            first = made[0].result
            self.out.send(JobFinished(job.job_id, tuple(dict.fromkeys(w for m in made for w in m.result.warnings)),
                                      time.perf_counter() - started,
                                      self.service.memory_in_use(first.request, first.settings.device),
                                      first.settings.device, first.settings.dtype, first.settings.backend))

    def _run_batch(self, job: RunBatch, token: CancelToken) -> None:
        from hypersd_desktop.worker.batch import BatchRunner, BatchSizer

        self.batch_sizer = self.batch_sizer or BatchSizer()

        started = time.perf_counter()
        spec = job.spec

        def on_progress(progress) -> None:
            self.out.send(BatchProgress(job.job_id, progress.done, progress.total, progress.rate, progress.eta_s,
                                        progress.item[:200]))

        with self._reported(job.job_id):
            self.out.send(JobStarted(job.job_id))
            report = BatchRunner(self.service, self.batch_sizer).run(spec.batch_id, list(spec.units), spec.target,
                                                                     spec.options, on_progress, token)
            self.out.send(BatchFinished(job.job_id, report.generated, report.skipped, str(report.manifest),
                                        time.perf_counter() - started))

    @contextlib.contextmanager
    def _reported(self, job_id: int):
        """Turns whatever stops a job into a `JobFailed` a person can act on; the worker keeps serving."""
        try:
            yield
        except CancelledError as error:
            plain = str(error) == str(CancelledError())  # a single image: nothing to say but that
            self.out.send(JobFailed(job_id, "Cancelled." if plain else f"Stopped: {error}.", cancelled=True))
        except AppError as error:  # OutOfMemoryError among them: the engine has freed its models
            self.out.send(JobFailed(job_id, str(error), not_saved=isinstance(error, NotSavedError)))
        except Exception as error:  # noqa: BLE001 - the worker boundary: log, report, keep serving
            log.exception("job %s failed", job_id)
            self.out.send(JobFailed(job_id, f"Generation failed: {type(error).__name__}: {error}. "
                                            f"Details are in {self.paths.data / 'worker.log'}.",
                                    details=traceback.format_exc()))


def main() -> int:
    incoming, outgoing = protocol_streams()
    paths = AppPaths.default().ensure()
    setup_logging("worker", paths)
    try:
        return Worker(incoming, outgoing, paths).serve()
    except BrokenPipeError:  # the app went away mid-message
        return 0
