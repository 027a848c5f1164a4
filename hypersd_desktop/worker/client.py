"""The GUI side of the worker: starts the process, queues jobs, and survives the worker dying.

No Qt and no torch here: `on_event` receives the protocol's messages (and the `QueueChanged`
and `WorkerRestarted` notices below) on a background thread; the Qt bridge turns them into
signals on the GUI thread.

- One job runs at a time; others wait in a queue that can be listed, reordered and trimmed.
  `latest_wins` replaces the queued jobs with the new one (typing-as-you-go).
- A cancel reaches the running job's next step; if the worker does not answer within
  `cancel_timeout` seconds it is ended and restarted.
- If the worker process dies (a driver crash, out of memory, killed from outside), the job is
  reported failed with a message, a new worker starts, and the queue goes on.
"""

from __future__ import annotations

import importlib
import itertools
import multiprocessing
import threading
from collections.abc import Callable
from dataclasses import dataclass

from hypersd_desktop.engine.types import GenerationRequest
from hypersd_desktop.worker.batch import BatchSpec
from hypersd_desktop.worker.protocol import (
    BatchFinished, CancelJob, JobFailed, JobFinished, RunBatch, RunJob, Shutdown, WorkerReady,
)

ENDS = (JobFinished, JobFailed, BatchFinished)


def _worker_entry(connection, home: str | None) -> None:
    """Runs in the spawned process. The engine is imported by name here, so nothing on the GUI
    side imports it, not even statically (the layer contracts check that the GUI imports no torch)."""
    importlib.import_module("hypersd_desktop.worker.process").worker_main(connection, home)


@dataclass(frozen=True)
class QueuedJob:
    """One image request, or a batch (`request` is then its first unit's, for display)."""

    job_id: int
    request: GenerationRequest
    batch: BatchSpec | None = None

    def requests(self) -> tuple[GenerationRequest, ...]:
        return tuple(unit.request for unit in self.batch.units) if self.batch else (self.request,)

    def describe(self) -> str:
        if self.batch:
            return f"batch of {len(self.batch.units)} images into {self.batch.target}"
        return f"{self.request.prompt[:60]} (seed {self.request.seed})"


@dataclass(frozen=True)
class QueueChanged:
    running: QueuedJob | None
    queued: tuple[QueuedJob, ...]


@dataclass(frozen=True)
class WorkerRestarted:
    reason: str


class WorkerClient:
    def __init__(self, on_event: Callable[[object], None], home: str | None = None, cancel_timeout: float = 5.0,
                 previews: bool = True) -> None:
        self.on_event = on_event
        self.home = home
        self.cancel_timeout = cancel_timeout
        self.previews = previews
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._queue: list[QueuedJob] = []
        self._running: QueuedJob | None = None
        self._ready = False
        self._process = None
        self._connection = None
        self._generation = 0  # which worker process the reader thread belongs to
        self._closing = False
        self._cancel_timer: threading.Timer | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            context = multiprocessing.get_context("spawn")
            parent, child = context.Pipe()
            process = context.Process(target=_worker_entry, args=(child, self.home), name="hypersd-worker", daemon=True)
            process.start()
            child.close()
            self._process, self._connection, self._ready = process, parent, False
            self._generation += 1
            generation = self._generation
        threading.Thread(target=self._read, args=(parent, process, generation), name="worker-client",
                         daemon=True).start()

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._closing = True
            process, connection = self._process, self._connection
            self._queue.clear()
        if connection is not None:
            try:
                connection.send(Shutdown())
            except (OSError, BrokenPipeError):
                pass
        if process is not None:
            process.join(timeout)
            if process.is_alive():
                process.kill()
                process.join(timeout)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # -- queue ----------------------------------------------------------------------------

    def submit(self, request: GenerationRequest, latest_wins: bool = False) -> int:
        """Queue a request; returns its job id. With `latest_wins`, queued (not running) jobs are dropped."""
        return self._enqueue(QueuedJob(next(self._ids), request), latest_wins)

    def submit_batch(self, spec: BatchSpec) -> int:
        """Queue a batch job; it runs as one job (one cancel stops it; running it again resumes it)."""
        return self._enqueue(QueuedJob(next(self._ids), spec.units[0].request, spec), latest_wins=False)

    def _enqueue(self, job: QueuedJob, latest_wins: bool) -> int:
        with self._lock:
            dropped = [j for j in self._queue if j.batch is None] if latest_wins else []  # batches stay
            self._queue = [j for j in self._queue if j not in dropped] + [job]
        for old in dropped:
            self.on_event(JobFailed(old.job_id, "Replaced by a newer request.", cancelled=True))
        self._dispatch()
        return job.job_id

    def queued(self) -> tuple[QueuedJob, ...]:
        with self._lock:
            return tuple(self._queue)

    @property
    def running(self) -> QueuedJob | None:
        return self._running

    def move(self, job_id: int, index: int) -> None:
        with self._lock:
            job = next((j for j in self._queue if j.job_id == job_id), None)
            if job is None:
                return
            self._queue.remove(job)
            self._queue.insert(max(0, min(index, len(self._queue))), job)
        self._notify_queue()

    def cancel(self, job_id: int) -> None:
        """Remove a queued job, or stop the running one (ending the worker if it does not stop in time)."""
        with self._lock:
            queued = next((j for j in self._queue if j.job_id == job_id), None)
            if queued is not None:
                self._queue.remove(queued)
            running = self._running if self._running and self._running.job_id == job_id else None
            connection = self._connection
        if queued is not None:
            self.on_event(JobFailed(job_id, "Removed from the queue.", cancelled=True))
            self._notify_queue()
            return
        if running is None or connection is None:
            return
        try:
            connection.send(CancelJob(job_id))
        except (OSError, BrokenPipeError):
            return
        timer = threading.Timer(self.cancel_timeout, self._cancel_overdue, args=(job_id,))
        timer.daemon = True
        with self._lock:
            self._cancel_timer = timer
        timer.start()

    def _cancel_overdue(self, job_id: int) -> None:
        with self._lock:
            if not self._running or self._running.job_id != job_id:
                return
            process = self._process
        if process is not None and process.is_alive():
            process.kill()  # the reader sees the pipe close and restarts the worker

    # -- internals ------------------------------------------------------------------------

    def _dispatch(self) -> None:
        with self._lock:
            if self._running is not None or not self._ready or not self._queue or self._connection is None:
                self._notify_queue()
                return
            job = self._queue.pop(0)
            self._running = job
            connection = self._connection
        self._notify_queue()
        try:
            if job.batch is not None:
                connection.send(RunBatch(job.job_id, job.batch))
            else:
                connection.send(RunJob(job.job_id, job.request.to_dict(), self.previews))
        except (OSError, BrokenPipeError):
            pass  # the reader notices the dead worker and reports the job

    def _notify_queue(self) -> None:
        with self._lock:
            event = QueueChanged(self._running, tuple(self._queue))
        self.on_event(event)

    def _read(self, connection, process, generation: int) -> None:
        while True:
            try:
                message = connection.recv()
            except (EOFError, OSError):
                break
            if isinstance(message, WorkerReady):
                with self._lock:
                    self._ready = True
            if isinstance(message, ENDS):
                with self._lock:
                    if self._running is not None and self._running.job_id == message.job_id:
                        self._running = None
                    if self._cancel_timer is not None:
                        self._cancel_timer.cancel()
                        self._cancel_timer = None
            self.on_event(message)
            if isinstance(message, (WorkerReady, *ENDS)):
                self._dispatch()
        process.join(5)
        with self._lock:
            if self._closing or generation != self._generation:
                return
            lost = self._running
            self._running = None
            cancelled = self._cancel_timer is not None
            if self._cancel_timer is not None:
                self._cancel_timer.cancel()
                self._cancel_timer = None
        code = process.exitcode
        if lost is not None:
            if cancelled:
                self.on_event(JobFailed(lost.job_id, "Cancelled (the worker did not stop in time and was restarted).",
                                        cancelled=True))
            else:
                self.on_event(JobFailed(
                    lost.job_id,
                    f"The generation worker stopped unexpectedly (exit code {code}); this can happen when the GPU "
                    "driver crashes or memory runs out. A new worker has been started; try again, perhaps with a "
                    "smaller size or batch."))
        self.on_event(WorkerRestarted(f"worker exited with code {code}"))
        self.start()
