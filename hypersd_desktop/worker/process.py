"""The worker process: owns the engine and the loaded pipelines, runs one job at a time.

Started with the spawn method (it also works inside a frozen executable). A reader thread
receives messages while a job runs, so a cancel reaches the engine's step callback at once.
Any failure is sent back as `JobFailed` with a message a person can act on; the traceback goes
to the worker's log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import queue
import threading
import time
import traceback

from hypersd_desktop.core.errors import AppError, CancelledError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.progress import CancelToken
from hypersd_desktop.worker.protocol import (
    BatchFinished, BatchProgress, CancelJob, ImageReady, JobFailed, JobFinished, JobProgress, JobStarted, RunBatch,
    RunJob, Shutdown, WorkerReady,
)

log = logging.getLogger("hypersd.worker")
PREVIEW_INTERVAL_S = 0.05


def worker_main(connection, home: str | None = None) -> None:
    """Entry point of the worker process. `home` overrides HYPERSD_HOME (tests)."""
    import os

    if home:
        os.environ["HYPERSD_HOME"] = home
    paths = AppPaths.default().ensure()
    logging.basicConfig(filename=paths.data / "worker.log", level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    from hypersd_desktop.engine.devices import available_devices
    from hypersd_desktop.engine.torch_engine import TorchEngine
    from hypersd_desktop.gallery.gallery import Gallery
    from hypersd_desktop.models.library import ModelLibrary

    engine = TorchEngine()
    gallery = Gallery(paths)
    hashes = ModelLibrary(paths).hash_cache()
    devices = tuple(available_devices())
    inbox: queue.Queue = queue.Queue()
    cancels: dict[int, CancelToken] = {}
    lock = threading.Lock()

    def read() -> None:
        while True:
            try:
                message = connection.recv()
            except (EOFError, OSError):
                inbox.put(Shutdown())
                return
            if isinstance(message, CancelJob):
                with lock:
                    cancels.setdefault(message.job_id, CancelToken()).cancel()
            else:
                inbox.put(message)

    threading.Thread(target=read, name="worker-reader", daemon=True).start()
    connection.send(WorkerReady(devices, devices[0]))
    while True:
        message = inbox.get()
        if isinstance(message, Shutdown):
            gallery.close()
            return
        if isinstance(message, (RunJob, RunBatch)):
            with lock:
                token = cancels.setdefault(message.job_id, CancelToken())
            run = _run if isinstance(message, RunJob) else _run_batch
            run(connection, engine, gallery, hashes, paths, message, token)
            with lock:
                cancels.pop(message.job_id, None)


def _run_batch(connection, engine, gallery, hashes, paths: AppPaths, job: RunBatch, token: CancelToken) -> None:
    from hypersd_desktop.worker.batch import BatchRunner
    from hypersd_desktop.worker.output import save_result_as

    started = time.perf_counter()
    spec = job.spec
    runner = BatchRunner(gallery, generate=lambda request, cancel: engine.generate(request, cancel=cancel)[0],
                         save=lambda result, path: save_result_as(result, path, hashes))

    def on_progress(progress) -> None:
        connection.send(BatchProgress(job.job_id, progress.done, progress.total, progress.rate, progress.eta_s))

    with _reported(connection, engine, paths, job.job_id):
        connection.send(JobStarted(job.job_id))
        report = runner.run(spec.batch_id, list(spec.units), spec.target, spec.options, on_progress, token)
        connection.send(BatchFinished(job.job_id, report.generated, report.skipped, str(report.manifest),
                                      time.perf_counter() - started))


@contextlib.contextmanager
def _reported(connection, engine, paths: AppPaths, job_id: int):
    """Turns whatever stops a job into a `JobFailed` a person can act on; the worker keeps serving."""
    try:
        yield
    except CancelledError as error:
        plain = str(error) == str(CancelledError())  # a single image: nothing to say but that
        connection.send(JobFailed(job_id, "Cancelled." if plain else f"Stopped: {error}.", cancelled=True))
    except AppError as error:
        connection.send(JobFailed(job_id, str(error)))
    except MemoryError:
        engine.unload()
        connection.send(JobFailed(job_id, "Out of memory. Try a smaller size or batch, or enable memory "
                                          "options in Settings."))
    except Exception as error:  # noqa: BLE001 - the worker boundary: log, report, keep serving
        log.exception("job %s failed", job_id)
        message = str(error)
        if "out of memory" in message.lower():
            engine.unload()
            message = ("The GPU ran out of memory. Try a smaller size or batch, or enable memory options in "
                       "Settings.")
        else:
            message = (f"Generation failed: {type(error).__name__}: {message}. "
                       f"Details are in {paths.data / 'worker.log'}.")
        connection.send(JobFailed(job_id, message, details=traceback.format_exc()))


def _run(connection, engine, gallery, hashes, paths: AppPaths, job: RunJob, token: CancelToken) -> None:
    from hypersd_desktop.engine.devices import memory_in_use
    from hypersd_desktop.engine.types import GenerationRequest
    from hypersd_desktop.worker.output import save_result

    started = time.perf_counter()
    last_preview = [0.0]

    def on_progress(progress) -> None:
        png = None
        now = time.perf_counter()
        if progress.preview is not None and (now - last_preview[0] >= PREVIEW_INTERVAL_S
                                             or progress.step == progress.total_steps):
            buffer = io.BytesIO()
            progress.preview.save(buffer, format="PNG", compress_level=1)
            png = buffer.getvalue()
            last_preview[0] = now
        connection.send(JobProgress(job.job_id, progress.step, progress.total_steps, progress.elapsed_s, png))

    with _reported(connection, engine, paths, job.job_id):
        connection.send(JobStarted(job.job_id))
        token.raise_if_cancelled()
        asked = GenerationRequest.from_dict(job.request)
        request = asked.replace(preview="latent") if job.preview and asked.preview == "none" else asked
        results = engine.generate(request, on_progress=on_progress, cancel=token)
        for result in results:
            # The image keeps the request as asked: live previews are the window's business, not the image's.
            path = save_result(dataclasses.replace(result, request=asked), paths.images, hashes)
            image_id = gallery.add_file(path, device=result.settings.device, time_taken=result.timings["per_image_s"])
            settings = {**result.settings.__dict__, "timesteps": list(result.settings.timesteps or ())}
            connection.send(ImageReady(job.job_id, result.index, str(path), image_id, result.seed, settings,
                                       dict(result.timings)))
        first = results[0].settings
        connection.send(JobFinished(job.job_id, tuple(results[0].warnings), time.perf_counter() - started,
                                    memory_in_use(first.device), first.device, first.dtype))
