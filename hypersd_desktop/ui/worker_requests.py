"""Jobs of one kind that a part of the window asks the worker for (control maps, a picture's tags): each asked for
once while it runs, its answer and its failure routed back to the part that asked, and its events left alone by the
Generate tab's job views."""

from __future__ import annotations

from PySide6.QtCore import QObject

from hypersd_desktop.worker.bridge import WorkerBridge


class WorkerRequests(QObject):
    """`answered(key, message)` and `failed_job(key, message)` are the subclass's: `key` is what the job asked for."""

    def __init__(self, bridge: WorkerBridge, answers, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self._jobs: dict[int, object] = {}  # unfinished job id -> what it asks for
        self._ids: set[int] = set()  # every such job's id, finished ones too (their last events may still come)
        answers.connect(self._answer)  # the bridge's signal for this kind's answer
        bridge.failed.connect(self._failure)
        bridge.finished.connect(self._finished)  # a method, not a lambda: Qt drops it with this object

    def _finished(self, message) -> None:
        self._jobs.pop(message.job_id, None)

    def owns(self, job_id: int) -> bool:
        """Whether `job_id` is one of these jobs (the Generate tab's job views leave those alone)."""
        return job_id in self._ids

    def ask(self, key, submit) -> None:
        """Ask for `key` with `submit(key)` (the client's, returning the job id) unless it is being made."""
        if key in self._jobs.values():
            return
        job_id = submit(key)  # its events come later, on this thread
        self._jobs[job_id] = key
        self._ids.add(job_id)

    def _answer(self, message) -> None:
        key = self._jobs.pop(message.job_id, None)  # one answer a job: the same can be asked again from now on
        if key is not None:
            self.answered(key, message)

    def _failure(self, message) -> None:
        key = self._jobs.pop(message.job_id, None)
        if key is not None:
            self.failed_job(key, message)

    def answered(self, key, message) -> None:
        raise NotImplementedError

    def failed_job(self, key, message) -> None:
        raise NotImplementedError
