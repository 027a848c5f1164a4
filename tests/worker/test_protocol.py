"""The wire protocol: messages round-trip as typed values, and a worker that is not what it
should be (another version, garbage, dying mid-message, silent) is a clear error, never a hang."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hypersd_desktop.core.vocab import Device, Scheduler
from hypersd_desktop.engine.types import GenerationRequest, LoraSpec
from hypersd_desktop.gallery.export import ExportOptions
from hypersd_desktop.worker.batch import BatchSpec, BatchUnit
from hypersd_desktop.worker.client import WorkerClient, WorkerRestarted, WorkerUnavailable, worker_command
from hypersd_desktop.worker.protocol import (
    MESSAGES, PROTOCOL_VERSION, Hello, ImageReady, JobFailed, JobProgress, RunBatch, RunJob, WorkerReady, WorkerRefused,
)
from hypersd_desktop.worker.wire import ProtocolError, encode, read_message
from event_log import Events

FAKES = Path(__file__).with_name("fake_workers.py")
REQUEST = GenerationRequest(prompt="a fox, ünïcode", base_model="/models/sd15", loras=(LoraSpec("/l/a.safetensors", 0.37),),
                            steps=3, guidance=0.0, eta=0.8, scheduler="tcd", timesteps=(999, 500, 1), seed=2**63 - 1,
                            width=512, height=768, device="cpu")


def test_messages_round_trip_as_typed_values():
    batch = BatchSpec("abc", (BatchUnit(1, 1, REQUEST),), Path("/out"), ExportOptions(format="webp", quality=80))
    messages = [RunJob(7, REQUEST, previews=False), RunBatch(8, batch),
                JobProgress(7, 2, 4, 0.25, b"\x89PNG\r\n\x1a\n" + bytes(range(256))),
                ImageReady(7, 0, 5, "/images/x.png", 12, b"png bytes", 1.5)]
    stream = io.BytesIO(b"".join(encode(m) for m in messages))
    received = [read_message(stream) for _ in messages]
    assert received == messages
    assert received[0].request.scheduler is Scheduler.TCD and received[0].request.device is Device.CPU
    assert received[1].spec.target == Path("/out") and isinstance(received[1].spec.units[0].request, GenerationRequest)
    with pytest.raises(EOFError):
        read_message(stream)


def test_every_message_type_has_a_unique_wire_name():
    assert len(MESSAGES) == len(set(MESSAGES.values())) >= 15


def edited(frame: bytes, old: bytes, new: bytes) -> bytes:
    """The frame with its JSON text edited, and the header's length fixed to match."""
    magic, size, parts = struct.unpack(">4sIH", frame[:10])
    text = frame[10:10 + size].replace(old, new)
    return struct.pack(">4sIH", magic, len(text), parts) + text + frame[10 + size:]


@pytest.mark.parametrize("damage, complaint", [
    (lambda frame: b"Loading..." + frame, "does not speak this protocol"),
    (lambda frame: frame[:-3], "ended in the middle of a message"),
    (lambda frame: edited(frame, b'"steps":3', b'"steps":"3"'), "run.request.steps should be an integer, not text"),
    (lambda frame: edited(frame, b'"type":"run"', b'"type":"rm-rf"'), "unknown message type 'rm-rf'"),
    (lambda frame: edited(frame, b'"steps":3', b'"steps":0'), "Steps must be between 1 and 100"),
    (lambda frame: edited(frame, b'"device":"cpu"', b'"device":"tpu"'), "run.request.device should be one of auto"),
    (lambda frame: frame[:4] + b"\xff\xff\xff\xff" + frame[8:], "declares 4294967295 bytes"),
])
def test_damaged_frames_are_protocol_errors_that_say_what_is_wrong(damage, complaint):
    frame = damage(encode(RunJob(1, REQUEST)))
    with pytest.raises(ProtocolError, match=complaint):
        read_message(io.BytesIO(frame))


def test_the_worker_refuses_another_protocol_version(app_home):
    worker = subprocess.Popen(worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    worker.stdin.write(encode(Hello(99, "9.9")))
    worker.stdin.flush()
    answer = read_message(worker.stdout)
    assert isinstance(answer, WorkerRefused) and f"speaks protocol {PROTOCOL_VERSION}; the app spoke protocol 99" in answer.message
    assert worker.wait(30) == 3


def fake_client(mode: str, **options) -> tuple[WorkerClient, Events]:
    events = Events()
    client = WorkerClient(events, command=[sys.executable, str(FAKES), mode], **options)
    client.start()
    return client, events


@pytest.mark.parametrize("mode, options, reason", [
    ("old-protocol", {}, f"it speaks protocol 99 (HyperSD Desktop 0.0-test); this app speaks {PROTOCOL_VERSION}"),
    ("garbage", {}, "does not speak this protocol (it began b'Loading we')) before it was ready"),
    ("silent", {"handshake_timeout": 1.0}, "s of starting, and has done no work for the last 1 s"),
    ("crash", {}, "exited with code 1 before it was ready: RuntimeError: the NVIDIA driver on this machine is too old"),
])
def test_a_worker_that_cannot_serve_is_reported_once_and_not_restarted(mode, options, reason):
    client, events = fake_client(mode, **options)
    job = client.submit(REQUEST)
    unavailable = events.wait_for(WorkerUnavailable)
    assert reason in unavailable.message
    failed = events.wait_for(JobFailed)
    assert failed.job_id == job and not failed.cancelled
    client._process.wait(10)  # ended, not left running
    assert not any(isinstance(e, WorkerRestarted) for e in events.items)
    later = client.submit(REQUEST)  # fails at once with the same reason rather than waiting forever
    assert [e.message for e in events.items if isinstance(e, JobFailed) and e.job_id == later] == [unavailable.message]
    assert client.running is None and client.queued() == ()
    client.shutdown()


def test_a_worker_still_working_at_the_handshake_timeout_is_waited_for_and_the_window_told():
    """A first start on a cold disk (torch's files read, on Windows each scanned first) takes minutes: the client
    waits on while the worker's CPU time or bytes read grow, saying so, and gives up only on a worker doing nothing
    (the silent one above)."""
    from hypersd_desktop.worker.client import WorkerStarting

    client, events = fake_client("slow-start", handshake_timeout=1.0)
    events.wait_for(WorkerReady)
    starting = [event.seconds for event in events.items if isinstance(event, WorkerStarting)]
    assert starting and starting[0] >= 1.0 and starting == sorted(starting)
    assert not any(isinstance(event, WorkerUnavailable) for event in events.items)
    client.shutdown()


def test_closing_the_app_does_not_wait_for_an_idle_worker_that_is_not_reading():
    client, events = fake_client("busy")
    events.wait_for(WorkerReady)
    started = time.perf_counter()
    client.shutdown()
    assert time.perf_counter() - started < 3  # not the 5 s a job in progress gets
    assert client._process.poll() is not None


def test_the_packaged_app_without_a_runtime_says_so_instead_of_starting_itself(app_home, monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # as PyInstaller sets it
    assert worker_command() is None and worker_command("/opt/runtime/bin/python")[0] == "/opt/runtime/bin/python"
    events = Events()
    client = WorkerClient(events)
    client.start()
    assert "compute runtime" in events.wait_for(WorkerUnavailable).message
    job = client.submit(REQUEST)
    assert any(isinstance(e, JobFailed) and e.job_id == job and "compute runtime" in e.message for e in events.items)
    client.shutdown()


def test_a_worker_that_dies_mid_message_fails_the_job_and_is_restarted():
    client, events = fake_client("mid-message")
    first_pid = client.pid
    job = client.submit(REQUEST)
    failed = events.wait_for(JobFailed)
    assert failed.job_id == job and "stopped unexpectedly" in failed.message
    assert "ended in the middle of a message" in failed.message
    events.wait_for(WorkerRestarted)
    with events.changed:  # a new worker answered the handshake
        assert events.changed.wait_for(lambda: sum(isinstance(e, WorkerReady) for e in events.items) == 2, 60)
    assert client.pid != first_pid
    client.shutdown()
