"""The app's side of the worker: starts the worker program, queues jobs, survives its dying.

No Qt and no torch here: `on_event` receives the protocol's messages (and the `QueueChanged`,
`WorkerRestarted` and `WorkerUnavailable` notices below) on a background thread; the Qt bridge
turns them into signals on the GUI thread.

- The worker is a program (`worker_command`, by default `python -m hypersd_desktop.worker`
  under this interpreter; another interpreter, such as an installed compute runtime, can be
  named). The first exchange is a handshake; a worker of another protocol version, one that
  writes anything but the protocol, or one that does not answer in time is reported as
  unavailable with the reason, and not restarted in a loop.
- A job's input images (`inputs`, by content hash) are sent to the worker process before the first
  job that names them, and again after a restart; a job whose image is missing here fails at once.
- One job runs at a time; others wait in a queue that can be listed, reordered and trimmed.
  `latest_wins` replaces the queued jobs with the new one (typing-as-you-go).
- A cancel reaches the running job's next step; if the worker does not answer within
  `cancel_timeout` seconds it is ended and restarted.
- The jobs that make images to keep, running or queued, can be written down (`kept_data`) and queued again
  after a restart (`queue_again`): they wait, marked `waiting`, until `resume()`, and newer jobs run before them.
- A job that made images the disk could not take (`JobFailed.not_saved`: full, or a drive gone) holds the
  queue: the queued jobs that save wait, each one's images would only be kept in memory, until `resume()` or
  a new job that saves (the person tries again); jobs that save nothing (live images, control maps) still run.
- If the worker dies after the handshake (a driver crash, out of memory, killed from outside,
  an unreadable message), the job is reported failed with a message, a new worker starts, and
  the queue goes on.
"""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from hypersd_desktop import __version__
from hypersd_desktop.core.codec import from_data, to_data
from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import HELD_IMAGES, InputImages
from hypersd_desktop.core.paths import HOME_ENV, AppPaths
from hypersd_desktop.core.vocab import Device
from hypersd_desktop.engine.plot import PlotSpec
from hypersd_desktop.engine.types import AUTO_BACKEND, GenerationRequest
from hypersd_desktop.worker.batch import BatchSpec
from hypersd_desktop.worker.protocol import (
    JOB_ENDS, PROTOCOL_VERSION, CancelJob, ControlMap, DescribeImage, Describing, EnlargeImage, Enlargement, Hello,
    JobFailed, MakeMap, PutImage, RunBatch, RunJob, RunPlot, Shutdown, WorkerReady, WorkerRefused,
)
from hypersd_desktop.worker.wire import MessageWriter, ProtocolError, read_message

log = logging.getLogger("hypersd.client")
# A worker starting imports torch (and on Windows a virus scanner reads each of its DLLs first): on a cold disk the
# first start after an install can take minutes. It is given up only after this long without a sign of work (no CPU
# time, no bytes read), or after MOST_HANDSHAKE_S in all.
HANDSHAKE_TIMEOUT_S = 60.0
MOST_HANDSHAKE_S = 15 * 60.0


NO_RUNTIME = ("Generation runs in a compute runtime (torch for this machine), which is not installed yet. "
              "Install it from File → Compute runtime… (a few hundred MB to a few GB, once).")


def worker_command(python: str | None = None) -> list[str] | None:
    """The command line that starts the worker program under `python` (default: this interpreter);
    None for the packaged app with no runtime set, which has no interpreter of its own to run it."""
    if python is None and getattr(sys, "frozen", False):
        return None
    return [python or sys.executable, "-m", "hypersd_desktop.worker"]


@dataclass(frozen=True)
class QueuedJob:
    """One image request, a batch (`request` is then its first unit's, for display), an X/Y/Z plot (`plot`; `request` is
    its base request), a control map to make (`map`), an image to enlarge alone (`enlargement`) or a picture to describe
    in tags (`describing`; `request` is None for those three)."""

    job_id: int
    request: GenerationRequest | None
    batch: BatchSpec | None = None
    save: bool = True  # False: the images are shown, not written (the Draw tab's live images)
    map: ControlMap | None = None
    enlargement: Enlargement | None = None
    describing: Describing | None = None
    plot: PlotSpec | None = None
    each: tuple[GenerationRequest, ...] = ()  # one-image requests made as one batch (`request` is the first)
    waiting: bool = False  # queued again from the last run of the app: waits for `WorkerClient.resume`

    def requests(self) -> tuple[GenerationRequest, ...]:
        if self.each:
            return self.each
        if self.batch:
            return tuple(unit.request for unit in self.batch.units)
        if self.plot:  # each image's: the Hyper-SD files and models a plot compares are in use too
            return tuple(cell.request for cell in self.plot.cells())
        return (self.request,) if self.request is not None else ()

    def input_images(self) -> tuple[str, ...]:
        """The digests of the input images the worker needs for this job."""
        named = tuple(digest for request in self.requests() for digest in request.input_images())
        pictures = (self.map.image,) if self.map else (self.describing.image,) if self.describing else ()
        return tuple(dict.fromkeys(named + pictures))

    @property
    def saves(self) -> bool:
        """Whether the job writes images: a generation to keep or a batch (not a live image, not a map, not tags)."""
        return self.map is None and self.describing is None and (self.save or self.batch is not None)

    @property
    def kept(self) -> bool:
        """Whether the job is queued again after a restart: it makes images to keep, and is no batch (the batch
        dialog resumes those, each image made once)."""
        return self.saves and self.batch is None

    def describe(self) -> str:
        if self.map:
            return f"{self.map.kind} map of a ControlNet picture"
        if self.describing:
            return f"tags of a picture ({Path(self.describing.tagger).name})"
        if self.enlargement:
            how = Path(self.enlargement.upscaler).stem if self.enlargement.upscaler else "Lanczos"
            return f"{Path(self.enlargement.path).name} enlarged × {self.enlargement.scale:g} ({how})"
        if self.plot:
            return self.plot.describe()
        if self.batch:
            return f"batch of {len(self.batch.units)} images into {self.batch.target}"
        more = f", {len(self.each)} images with their own prompts" if self.each else ""
        return f"{self.request.prompt[:60]} (seed {self.request.seed}{more})"


def kept_data(jobs: Iterable[QueuedJob | None]) -> list:
    """The jobs to queue again after a restart (`QueuedJob.kept`), as JSON data."""
    return [to_data(replace(job, job_id=0, waiting=False)) for job in jobs if job is not None and job.kept]


def kept_jobs(data: object) -> tuple[list[QueuedJob], int]:
    """The jobs `kept_data` wrote, and how many of its entries could not be read (edited by hand, or of a request
    this version cannot make)."""
    jobs, damaged = [], 0
    for item in data if isinstance(data, list) else ():
        try:
            job = from_data(QueuedJob, item)
        except Exception:  # noqa: BLE001 - a request's own validation: any value out of range
            damaged += 1
            continue
        if job.kept and (job.request is not None or job.enlargement is not None):
            jobs.append(job)
        else:
            damaged += 1
    return jobs, damaged


@dataclass(frozen=True)
class QueueChanged:
    running: QueuedJob | None
    queued: tuple[QueuedJob, ...]
    held: bool = False  # the queued jobs that save wait for `WorkerClient.resume` (the disk could not take one)
    paused: bool = False  # the same, as the person paused the queue


@dataclass(frozen=True)
class WorkerRestarted:
    reason: str


@dataclass(frozen=True)
class WorkerStarting:
    """The worker has not answered yet after `seconds`, and is still working (importing torch): the window says so."""

    seconds: float


@dataclass(frozen=True)
class WorkerUnavailable:
    """No worker can be used: `message` says why and what to do. Queued jobs were dropped."""

    message: str


class WorkerClient:
    """Runs jobs in the worker program. `command` starts it (default: `worker_command()`); `home`
    is passed to it as HYPERSD_HOME (tests); `inputs` holds the input images jobs name (default: the
    data folder's)."""

    def __init__(self, on_event: Callable[[object], None], home: str | None = None, cancel_timeout: float = 5.0,
                 previews: bool = True, command: list[str] | None = None,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT_S, inputs: InputImages | None = None) -> None:
        self.on_event = on_event
        self.inputs = inputs or InputImages(AppPaths.default().inputs)
        # Input images the running worker process holds, newest last. Fewer than it holds, so one listed is
        # surely still there; older ones are sent again.
        self._sent: OrderedDict[str, None] = OrderedDict()
        self.home = home
        self.cancel_timeout = cancel_timeout
        self.previews = previews
        self.command = command
        self.handshake_timeout = handshake_timeout
        self.engine_choice: tuple[str, str] = (AUTO_BACKEND, "auto")  # (backend, device) to open ahead
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._queue: list[QueuedJob] = []
        self._running: QueuedJob | None = None
        self._held = False  # a job's images could not be saved: the queued jobs that save wait
        self._paused = False  # the person paused the queue: the queued jobs that save wait
        self._ready: WorkerReady | None = None
        self._process: subprocess.Popen | None = None
        self._writer: MessageWriter | None = None
        self._generation = 0  # which worker process the reader thread belongs to
        self._closing = False
        self._cancel_timer: threading.Timer | None = None
        self._handshake_timer: threading.Timer | None = None
        self._started_at = 0.0  # when the running worker process was started (time.monotonic)
        self._work_seen: tuple[float, int] | None = None  # its CPU seconds and bytes read at the last look
        self._log_start = 0  # where the running worker's part of worker.log begins
        self._unavailable_reason: str | None = None  # set when no worker can be used
        self._left: tuple[QueuedJob, ...] = ()  # the running and queued jobs as `shutdown` found them

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker program and send the handshake; `WorkerReady` or `WorkerUnavailable` follows."""
        env = dict(os.environ)
        if self.home:
            env[HOME_ENV] = self.home
        command = self.command or worker_command()
        if command is None:
            self._unavailable(NO_RUNTIME)
            return
        paths = AppPaths.default().ensure()
        try:
            with open(paths.data / "worker.log", "ab") as log_file:  # the worker's stderr: tracebacks, crashes
                log_start = log_file.tell()
                process = subprocess.Popen(
                    command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file, env=env,
                    creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
                )
        except OSError as error:
            self._unavailable(f"The generation worker could not be started ({' '.join(command)}: {error}). "
                              "Check the worker's Python in Settings.")
            return
        with self._lock:
            self._closing = False  # started again after a shutdown: served, and restarted if it dies
            self._process, self._writer, self._ready = process, MessageWriter(process.stdin), None
            self._log_start = log_start
            self._sent.clear()  # a new process holds no images
            self._generation += 1
            generation = self._generation
            self._started_at, self._work_seen = time.monotonic(), _work_done(process.pid)
        self._look_at_handshake_in(self.handshake_timeout, generation)
        self._send(Hello(PROTOCOL_VERSION, __version__, *self.engine_choice))
        threading.Thread(target=self._read, args=(process, generation), name="worker-client", daemon=True).start()

    def shutdown(self, timeout: float = 5.0, idle_timeout: float = 0.5) -> None:
        """Ask the worker to exit: a job in progress gets `timeout` to stop cleanly; an idle worker
        (possibly still importing torch, which does not read messages) gets `idle_timeout`, then
        is ended, so closing the window right after opening it does not hang."""
        with self._lock:
            if not self._closing:
                self._left = self.pending()
            self._closing = True
            process = self._process
            busy = self._running is not None
            self._queue.clear()
            for timer in (self._cancel_timer, self._handshake_timer):
                if timer is not None:
                    timer.cancel()
        if process is None:
            return
        self._send(Shutdown())
        try:
            process.wait(timeout if busy else idle_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def successor(self, command: list[str]) -> WorkerClient:
        """A client of another worker program (`command`: an interpreter chosen in Settings, a runtime installed) that
        takes over this one's jobs, once this one is shut down: the running one is made again, and the queued ones
        keep their places and ids, so whatever waits on them (Describe, Generate forever) goes on."""
        self.shutdown()
        client = WorkerClient(self.on_event, home=self.home, cancel_timeout=self.cancel_timeout,
                              previews=self.previews, command=command, inputs=self.inputs)
        client.engine_choice = self.engine_choice
        with self._lock:
            client._ids = self._ids
            client._queue, client._held, client._paused = list(self._left), self._held, self._paused
        return client

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def ready(self) -> WorkerReady | None:
        """The running worker's handshake answer (versions, backends, devices), or None before it."""
        return self._ready

    # -- queue ----------------------------------------------------------------------------

    def submit(self, request: GenerationRequest, latest_wins: bool = False, save: bool = True) -> int:
        """Queue a request; returns its job id. With `latest_wins`, queued (not running) jobs are dropped.
        Without `save`, its images come back as `ImageReady` with no path and are written nowhere."""
        return self._enqueue(QueuedJob(next(self._ids), request, save=save), latest_wins)

    def submit_together(self, requests: Sequence[GenerationRequest], latest_wins: bool = False) -> int:
        """Queue one-image requests of one `batch_key` (a dynamic prompt's images, each with its own choices) as one
        job, made as one batch; each image comes back as `ImageReady`, as a batch's do."""
        job = QueuedJob(next(self._ids), requests[0], each=tuple(requests) if len(requests) > 1 else ())
        return self._enqueue(job, latest_wins)

    def submit_map(self, control_map: ControlMap) -> int:
        """Queue the making of a control map; it comes back as `MapReady`, on the device generation uses."""
        return self._enqueue(QueuedJob(next(self._ids), None, map=control_map), latest_wins=False)

    def submit_enlargement(self, enlargement: Enlargement) -> int:
        """Queue an image to enlarge alone; it comes back as `ImageReady`, saved into the gallery."""
        return self._enqueue(QueuedJob(next(self._ids), None, enlargement=enlargement), latest_wins=False)

    def submit_description(self, describing: Describing) -> int:
        """Queue a picture to describe in tags; they come back as `Described`."""
        return self._enqueue(QueuedJob(next(self._ids), None, describing=describing), latest_wins=False)

    def submit_batch(self, spec: BatchSpec) -> int:
        """Queue a batch job; it runs as one job (one cancel stops it; running it again resumes it)."""
        return self._enqueue(QueuedJob(next(self._ids), spec.units[0].request, spec), latest_wins=False)

    def submit_plot(self, spec: PlotSpec) -> int:
        """Queue an X/Y/Z plot; it runs as one job, its images and then its grid coming back as `ImageReady`."""
        return self._enqueue(QueuedJob(next(self._ids), spec.base, plot=spec), latest_wins=False)

    def _enqueue(self, job: QueuedJob, latest_wins: bool) -> int:
        if self._unavailable_reason is not None:  # nothing would ever run it
            self.on_event(JobFailed(job.job_id, self._unavailable_reason))
            return job.job_id
        with self._lock:
            if job.saves:  # asked for anew: the person has made room, or wants to see whether there is
                self._held = False
            # batches, plots, control maps and enlargements stay: a newer image asked for replaces only the images
            # waiting
            dropped = [j for j in self._queue if j.request is not None and j.batch is None and j.plot is None
                       and not j.waiting] if latest_wins else []
            self._queue = [j for j in self._queue if j not in dropped] + [job]
        for old in dropped:
            self.on_event(JobFailed(old.job_id, "Replaced by a newer request.", cancelled=True))
        self._dispatch()
        return job.job_id

    def queue_again(self, jobs: Sequence[QueuedJob]) -> list[int]:
        """Queue jobs of the app's last run (`kept_jobs`) at the end, waiting until `resume()`; their new ids."""
        with self._lock:
            again = [replace(job, job_id=next(self._ids), waiting=True) for job in jobs]
            self._queue += again
        self._notify_queue()
        return [job.job_id for job in again]

    def queued(self) -> tuple[QueuedJob, ...]:
        with self._lock:
            return tuple(self._queue)

    def pending(self) -> tuple[QueuedJob, ...]:
        """The running job (if any), then the queued ones."""
        with self._lock:
            return ((self._running,) if self._running is not None else ()) + tuple(self._queue)

    @property
    def running(self) -> QueuedJob | None:
        return self._running

    @property
    def held(self) -> bool:
        """Whether the queued jobs that save wait (a job's images could not be saved) until `resume()`."""
        return self._held

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Start no more jobs that save until `resume()`: the running one ends as it would; the queued ones wait, as
        do those asked for meanwhile (live images, maps and tags still run)."""
        with self._lock:
            self._paused = True
        self._notify_queue()

    def resume(self) -> None:
        """Run the held jobs again (there is room on the disk now, or the person says so), those of a paused queue,
        and those waiting from the last run."""
        with self._lock:
            waited = any(job.waiting for job in self._queue)
            was_held, self._held = self._held or self._paused, False
            self._paused = False
            self._queue = [replace(job, waiting=False) if job.waiting else job for job in self._queue]
        if was_held or waited:
            self._dispatch()
        else:
            self._notify_queue()

    def move(self, job_id: int, index: int) -> None:
        with self._lock:
            job = next((j for j in self._queue if j.job_id == job_id), None)
            if job is None:
                return
            self._queue.remove(job)
            self._queue.insert(max(0, min(index, len(self._queue))), job)
        self._notify_queue()

    def remove(self, job_ids: Sequence[int]) -> None:
        """Take the queued jobs of `job_ids` off the queue at once (one `QueueChanged`, a `JobFailed` each); one of
        them running is cancelled as `cancel` does."""
        wanted = set(job_ids)
        with self._lock:
            removed = [job for job in self._queue if job.job_id in wanted]
            self._queue = [job for job in self._queue if job.job_id not in wanted]
            running = self._running.job_id if self._running is not None and self._running.job_id in wanted else None
        for job in removed:
            self.on_event(JobFailed(job.job_id, "Removed from the queue.", cancelled=True))
        if removed:
            self._notify_queue()
        if running is not None:
            self.cancel(running)

    def cancel(self, job_id: int) -> None:
        """Remove a queued job, or stop the running one (ending the worker if it does not stop in time)."""
        with self._lock:
            queued = next((j for j in self._queue if j.job_id == job_id), None)
            if queued is not None:
                self._queue.remove(queued)
            running = self._running if self._running and self._running.job_id == job_id else None
        if queued is not None:
            self.on_event(JobFailed(job_id, "Removed from the queue.", cancelled=True))
            self._notify_queue()
            return
        if running is None or not self._send(CancelJob(job_id)):
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
        if process is not None and process.poll() is None:
            process.kill()  # the reader sees the pipe close and restarts the worker

    # -- internals ------------------------------------------------------------------------

    def _send(self, message: object) -> bool:
        with self._lock:
            writer = self._writer
        if writer is None:
            return False
        try:
            writer.send(message)
            return True
        except (OSError, ValueError):  # the worker has gone; the reader reports it
            return False

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                runnable = [j for j in self._queue if not (j.waiting or (self._held or self._paused) and j.saves)]
                if self._running is not None or self._ready is None or not runnable:
                    self._notify_queue()
                    return
                job = runnable[0]
                self._queue.remove(job)
                self._running = job
            self._notify_queue()
            missing = self._send_inputs(job)
            if missing is None:
                if job.map is not None:
                    self._send(MakeMap(job.job_id, job.map, Device(self.engine_choice[1])))
                elif job.enlargement is not None:
                    self._send(EnlargeImage(job.job_id, job.enlargement, Device(self.engine_choice[1])))
                elif job.describing is not None:
                    self._send(DescribeImage(job.job_id, job.describing, Device(self.engine_choice[1])))
                elif job.batch is not None:
                    self._send(RunBatch(job.job_id, job.batch))
                elif job.plot is not None:
                    self._send(RunPlot(job.job_id, job.plot))
                else:
                    # A live image is shown whole when done: no step previews to make and send.
                    self._send(RunJob(job.job_id, job.request, self.previews and job.save, job.save, job.each))
                return
            with self._lock:
                self._running = None
            self.on_event(JobFailed(job.job_id, missing))  # and on to the next job

    def _send_inputs(self, job: QueuedJob) -> str | None:
        """Send the worker the input images `job` names that it may not hold; what is wrong when one is not here."""
        for digest in job.input_images():
            with self._lock:
                if digest in self._sent:
                    self._sent.move_to_end(digest)
                    continue
            try:
                data = self.inputs.read(digest)
            except (InputError, OSError) as error:
                return str(error)
            if not self._send(PutImage(digest, data)):
                return None  # the worker has gone; its reader reports the job
            with self._lock:
                self._sent[digest] = None
                while len(self._sent) > HELD_IMAGES // 2:
                    self._sent.popitem(last=False)
        return None

    def _notify_queue(self) -> None:
        with self._lock:
            event = QueueChanged(self._running, tuple(self._queue), self._held, self._paused)
        self.on_event(event)

    def _look_at_handshake_in(self, seconds: float, generation: int) -> None:
        timer = threading.Timer(seconds, self._handshake_overdue, args=(generation,))
        timer.daemon = True
        with self._lock:
            self._handshake_timer = timer
        timer.start()

    def _handshake_overdue(self, generation: int) -> None:
        """The worker has not answered: wait on while it works (its CPU time or bytes read grew since the last look),
        up to `MOST_HANDSHAKE_S`; give it up when it has done nothing for `handshake_timeout` (hung, or waiting on
        something that will not come)."""
        with self._lock:
            if generation != self._generation or self._ready is not None:
                return
            process, seen = self._process, self._work_seen
            waited = time.monotonic() - self._started_at
            now = _work_done(process.pid)
            self._work_seen = now
        if now is not None and now != seen and process.poll() is None and waited < MOST_HANDSHAKE_S:
            log.info("the worker has not answered after %.0f s, and is still starting", waited)
            self.on_event(WorkerStarting(waited))
            self._look_at_handshake_in(min(self.handshake_timeout, MOST_HANDSHAKE_S - waited), generation)
            return
        idle = f", and has done no work for the last {self.handshake_timeout:.0f} s" if now == seen else ""
        self._fail_handshake(process, f"The generation worker did not answer within {waited:.0f} s of starting{idle}. "
                                      f"Its log is {AppPaths.default().data / 'worker.log'}.")

    def _fail_handshake(self, process: subprocess.Popen, reason: str) -> None:
        with self._lock:
            self._closing = True  # no restart: the same program would fail the same way
        if process.poll() is None:
            process.kill()
        self._unavailable(reason)

    def _unavailable(self, reason: str) -> None:
        log.error("worker unavailable: %s", reason)
        with self._lock:
            self._unavailable_reason = reason
            dropped, self._queue = self._queue, []
        for job in dropped:
            self.on_event(JobFailed(job.job_id, reason))
        self.on_event(WorkerUnavailable(reason))
        self._notify_queue()

    def _handshake(self, process: subprocess.Popen, message: object) -> bool:
        """Check the worker's first message; True when it is ready to serve this app."""
        if isinstance(message, WorkerRefused):
            reason = message.message
        elif not isinstance(message, WorkerReady):
            reason = f"it began with a {type(message).kind!r} message instead of the handshake"
        elif message.protocol != PROTOCOL_VERSION:
            reason = (f"it speaks protocol {message.protocol} (HyperSD Desktop {message.version}); this app speaks "
                      f"{PROTOCOL_VERSION} ({__version__})")
        else:
            return True
        self._fail_handshake(process, f"The generation worker cannot serve this app: {reason}. Install the same "
                                      "version of HyperSD Desktop in the worker's Python, or choose another in Settings.")
        return False

    def _read(self, process: subprocess.Popen, generation: int) -> None:
        broken = None
        while True:
            try:
                message = read_message(process.stdout)
            except EOFError:
                break
            except (ProtocolError, OSError, ValueError) as error:
                broken = str(error)
                break
            if self._closing or generation != self._generation:
                continue  # shut down: its jobs end with the app, or are run by its successor
            if self._ready is None:
                if not self._handshake(process, message):
                    return
                with self._lock:
                    self._ready = message
                    if self._handshake_timer is not None:
                        self._handshake_timer.cancel()
            if isinstance(message, JOB_ENDS):
                with self._lock:
                    if self._running is not None and self._running.job_id == message.job_id:
                        self._running = None
                    if isinstance(message, JobFailed) and message.not_saved:
                        self._held = True
                    if self._cancel_timer is not None:
                        self._cancel_timer.cancel()
                        self._cancel_timer = None
            self.on_event(message)
            if isinstance(message, (WorkerReady, *JOB_ENDS)):
                self._dispatch()
        self._worker_gone(process, generation, broken)

    def _worker_gone(self, process: subprocess.Popen, generation: int, broken: str | None) -> None:
        if broken is not None:
            log.error("unreadable message from the worker: %s", broken)
            if process.poll() is None:
                process.kill()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        with self._lock:
            if self._closing or generation != self._generation:
                return
            was_ready = self._ready is not None
            lost = self._running
            self._running = None
            cancelled = self._cancel_timer is not None
            if self._cancel_timer is not None:
                self._cancel_timer.cancel()
                self._cancel_timer = None
        code = process.returncode
        what = f"sent a message this app cannot read ({broken})" if broken else f"exited with code {code}"
        if not was_ready:  # it never served: starting it again would fail the same way
            log_path = AppPaths.default().data / "worker.log"
            said = _last_line(log_path, self._log_start)
            self._fail_handshake(process, f"The generation worker ({' '.join(process.args)}) {what} before it was "
                                          f"ready{': ' + said if said else ''}. Check Settings → Worker Python; "
                                          f"the worker's log is {log_path}.")
            return
        if lost is not None:
            if cancelled:
                self.on_event(JobFailed(lost.job_id, "Cancelled (the worker did not stop in time and was restarted).",
                                        cancelled=True))
            else:
                self.on_event(JobFailed(
                    lost.job_id,
                    f"The generation worker stopped unexpectedly ({what}); this can happen when the GPU "
                    "driver crashes or memory runs out. A new worker has been started; try again, perhaps with a "
                    "smaller size or batch."))
        self.on_event(WorkerRestarted(f"worker {what}"))
        self.start()


def _last_line(log: Path, start: int) -> str:
    """The last line a worker wrote to its log from `start` on (what it said as it failed)."""
    try:
        with open(log, "rb") as stream:
            stream.seek(start)
            lines = stream.read()[-4000:].decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""


def _work_done(pid: int) -> tuple[float, int] | None:
    """The CPU seconds a process and its children have used and the bytes they have read so far (where the system
    counts them): on Windows a virtual environment's python.exe is a launcher whose child interpreter does the
    work. None when the process has gone or cannot be looked at."""
    import psutil

    try:
        process = psutil.Process(pid)
        family = [process, *process.children(recursive=True)]
    except psutil.Error:
        return None
    seconds, read = 0.0, 0
    for member in family:
        try:
            times = member.cpu_times()
            seconds += times.user + times.system
            read += member.io_counters().read_bytes
        except (AttributeError, psutil.Error):  # gone meanwhile; macOS counts no bytes read per process
            continue
    return seconds, read
