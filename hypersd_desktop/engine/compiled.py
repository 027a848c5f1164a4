"""The UNet and the VAE decode compiled ahead of time for this GPU, in the background, kept on disk.

Compiling the SDXL UNet with inductor makes a step about twice as fast on an H200, and takes minutes.
Nobody should wait for that, so requests keep running eagerly (or from CUDA graphs) while each part
(UNet, VAE decode) is compiled for each input layout it is called with (shapes, dtypes, which
optional inputs), one at a time:

1. A compiler process (`python -m hypersd_desktop.engine.compiled`) gets a `StepSpec`: the part's
   class and config, its dtype and device, the layout and the input shapes. It builds the module
   from the config with uninitialised weights, traces it with `torch.export` and compiles the trace
   with AOTInductor into a package (`.pt2`) without the weights (`package_constants_in_so=False`):
   kernels only, megabytes, not gigabytes. A process of its own, because the tracer patches
   `torch.nn.Module.__call__` for the whole process while it runs (an eager call in another thread
   then fails), and so that its minutes of Python do not slow the images being made meanwhile.
2. The package is written whole (a temporary name, then a rename) under `<cache>/compiled/`, named
   by a digest of the spec with torch's version and the device's name (GPU and compute capability;
   the CPU's vector extension). The weights are not part of the name, so another fine-tune or LoRA
   set of the same architecture reuses the package.
3. Back in the worker, a background thread loads it and gives it the live weights as user-managed
   constants (no copy; LoRAs fused in place show through). It is checked against the eager call on
   the same inputs and timed against it. Only then do calls with that layout take it.

A package on disk skips steps 1 and 2, so after a restart a compiled part is back in about a
second. A failure anywhere (the compiler process, a check that fails) is logged, posted as a
notice, and leaves that layout eager for the rest of the session.

While the thread runs the compiled step on the device (the check and the timing), it holds
`graphs.DEVICE_WORK`, so that no CUDA graph is captured meanwhile: a capture forbids other threads'
allocations.
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import importlib
import itertools
import json
import logging
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from hypersd_desktop.core.files import replace_file
from hypersd_desktop.engine import notices
from hypersd_desktop.engine.devices import lay_out, module_bytes, weights_layout
from hypersd_desktop.engine.graphs import DEVICE_WORK, unflatten

log = logging.getLogger("hypersd.compiled")

LAYOUT = 1  # bumped when what a package holds changes
KEEP = 48  # packages kept on disk, the most recently used
TOLERANCE = 0.02  # of the eager output's largest magnitude: a compiled step further off is not used
TIMED_CALLS = 3
# What the compiler process needs on the device besides its copy of the part's weights: the CUDA context,
# the inputs and the autotuning's trial kernels.
COMPILE_HEADROOM = 2**30


class UNetStep(torch.nn.Module):
    """The UNet as one call on flat tensors (sample, timestep, text embeddings, then the layout's extras)."""

    def __init__(self, unet: torch.nn.Module, layout: tuple) -> None:
        super().__init__()
        self.unet = unet
        self.layout = layout

    def forward(self, sample, timestep, encoder_hidden_states, *rest):
        return self.unet(sample, timestep, encoder_hidden_states, **unflatten(self.layout, list(rest)),
                         return_dict=False)[0]


class DecodeStep(torch.nn.Module):
    """The VAE's decode of latents."""

    def __init__(self, vae: torch.nn.Module, layout: tuple = ()) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latents):
        return self.vae.decode(latents, return_dict=False)[0]


STEPS = {"unet": UNetStep, "vae": DecodeStep}


def sharing_weights(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of `module`'s objects whose parameters and buffers are the very same tensors, without the
    call wrappers that graphs install on the instance."""
    memo: dict[int, object] = {id(t): t for t in itertools.chain(module.parameters(), module.buffers())}
    patched = [(m, name) for m in module.modules() for name in ("forward", "decode") if name in m.__dict__]
    for m, name in patched:
        memo[id(m.__dict__[name])] = None
    clone = copy.deepcopy(module, memo)
    for m in clone.modules():
        for name in ("forward", "decode"):
            if m.__dict__.get(name, False) is None:
                del m.__dict__[name]
    return clone


def device_name(device: torch.device) -> str:
    """What the kernels are made for: the GPU and its compute capability, or the CPU's vector extension."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"{torch.cuda.get_device_name(device)} sm{major}{minor}"
    return f"{platform.machine()} {torch.backends.cpu.get_cpu_capability()}"


@dataclass(frozen=True)
class StepSpec:
    """What a compiled step is made from, as JSON: enough to build the module without its weights."""

    part: str  # "unet" or "vae"
    module_class: str  # "diffusers.UNet2DConditionModel"
    config: dict
    dtype: str  # the weights' ("torch.float16")
    device: str  # "cuda:0", "cpu"
    layout: list  # graphs' layout of the optional inputs, as JSON
    inputs: list  # [[shape], dtype] of each input tensor
    memory_format: str = "contiguous"  # of the weights ("channels_last"): the kernels index them so

    @classmethod
    def of(cls, part: str, module: torch.nn.Module, layout: tuple, tensors: list[torch.Tensor]) -> StepSpec:
        # The architecture's settings; not the "_name_or_path" and versions, so the name stays the same elsewhere.
        config = {key: value for key, value in dict(getattr(module, "config", {})).items() if not key.startswith("_")}
        config = json.loads(json.dumps(config, default=str, sort_keys=True))
        kind = type(module)
        return cls(part, f"{kind.__module__.split('.')[0]}.{kind.__name__}", config,
                   str(next(module.parameters()).dtype), str(tensors[0].device), json.loads(json.dumps(layout)),
                   [[list(t.shape), str(t.dtype)] for t in tensors], weights_layout(module))

    def package_name(self, device_label: str) -> str:
        described = {"layout": LAYOUT, "spec": asdict(self), "torch": torch.__version__, "device": device_label}
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:24] + ".pt2"

    def tuple_layout(self) -> tuple:
        return tuple((name, shape if shape is None or isinstance(shape, int) else tuple(shape))
                     for name, shape in self.layout)

    def build_step(self) -> tuple[torch.nn.Module, list[torch.Tensor]]:
        """The step module with uninitialised weights on the device, and inputs of the spec's shapes."""
        package, _, name = self.module_class.partition(".")
        cls = getattr(importlib.import_module(package), name)
        dtype = getattr(torch, self.dtype.removeprefix("torch."))
        with torch.device("meta"):
            module = cls.from_config(self.config)
        module = lay_out(module.to(dtype).to_empty(device=self.device), self.memory_format == "channels_last").eval()
        inputs = []
        for shape, kind in self.inputs:
            kind = getattr(torch, kind.removeprefix("torch."))
            inputs.append(torch.randn(shape, dtype=kind, device=self.device) if kind.is_floating_point
                          else torch.full(shape, 500, dtype=kind, device=self.device))
        return STEPS[self.part](module, self.tuple_layout()).eval(), inputs


def package_name(part: str, module: torch.nn.Module, layout: tuple, tensors: list[torch.Tensor]) -> str:
    return StepSpec.of(part, module, layout, tensors).package_name(device_name(tensors[0].device))


def build_package(spec: StepSpec, path: Path) -> None:
    """Export the step `spec` describes and compile it with AOTInductor into `path`, weights left out
    (run in the compiler process). What inductor would compute from the weights once (a linear
    layer's transposed weight, say) is computed when the package is given its weights, not from the
    placeholder weights here: runtime constant folding."""
    step, example = spec.build_step()
    with torch.no_grad():
        exported = torch.export.export(step, tuple(example), strict=False)
    torch._inductor.aoti_compile_and_package(exported, package_path=str(path), inductor_configs={
        "aot_inductor.package_constants_in_so": False, "aot_inductor.use_runtime_constant_folding": True})


_children: set[subprocess.Popen] = set()


@atexit.register
def _stop_children() -> None:
    for child in list(_children):
        child.kill()


def build_in_process(spec: StepSpec, path: Path) -> None:
    """`build_package` in a compiler process of its own; raises with the end of its error output."""
    command = [sys.executable, "-m", "hypersd_desktop.engine.compiled", json.dumps(asdict(spec)), str(path)]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             errors="replace")
    _children.add(child)
    try:
        _, errors = child.communicate()
    finally:
        _children.discard(child)
    if child.returncode != 0:
        lines = [line for line in errors.strip().splitlines() if line.strip()]
        log.warning("the compiler process said:\n%s", errors[-8000:])
        raise RuntimeError(f"the compiler process ended with {child.returncode}: {lines[-1] if lines else 'no output'}")


class LoadedStep:
    """A package run on a step module's own weights (user-managed constants: not copied)."""

    FOLDED = "_FOLDED_CONST_"

    def __init__(self, path: Path, step: torch.nn.Module) -> None:
        self.runner = torch._inductor.aoti_load_package(str(path))
        named = dict(itertools.chain(step.named_parameters(), step.named_buffers()))
        wanted = self.runner.get_constant_fqns()
        missing = [name for name in wanted if name not in named and not name.startswith(self.FOLDED)]
        if missing:
            raise ValueError(f"the package wants weights the module lacks: {', '.join(missing[:3])}")
        self.constants = {name: named[name] for name in wanted if name in named}
        self.refresh()

    def refresh(self) -> None:
        """Give the package the weights again, so that what it folds from them is computed anew (after a
        LoRA was fused or unfused in place)."""
        self.runner.load_constants(self.constants, check_full_update=False, user_managed=True)

    def __call__(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.runner(*tensors)


def load_package(path: Path, step: torch.nn.Module) -> LoadedStep:
    return LoadedStep(path, step)


@dataclass
class _Job:
    slot: tuple
    generation: int
    part: str
    module: torch.nn.Module
    layout: tuple
    example: list[torch.Tensor]
    spec: StepSpec
    name: str
    what: str


def _describe(part: str, tensors: list[torch.Tensor], scale: int) -> str:
    """"the UNet for 2 × 512 × 512": the part, the batch through it and the image size."""
    shape = tuple(tensors[0].shape)
    what = "the UNet" if part == "unet" else "the VAE decoder"
    return f"{what} for {shape[0]} × {shape[-1] * scale} × {shape[-2] * scale}"


def unsupported(device: torch.device) -> str | None:
    """Why steps cannot be compiled for `device` here, or None. AOTInductor builds a shared library
    with the system's C++ compiler, and on CUDA needs Triton (Linux wheels of torch bring it)."""
    import importlib.util
    import shutil

    if device.type == "cuda" and importlib.util.find_spec("triton") is None:
        return "Triton is not installed (PyTorch brings it on Linux)"
    if not any(shutil.which(name) for name in ("g++", "c++", "clang++", "cl")):
        return "no C++ compiler was found (install g++, or build-essential)"
    return None


def device_free_memory(device: torch.device) -> int | None:
    """Bytes free on the whole device (what another process, the compiler's, can have); None off CUDA."""
    return torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None


def compile_memory(module: torch.nn.Module) -> int:
    """Bytes the compiler process holds on the device while it compiles `module`'s part."""
    return module_bytes(module) + COMPILE_HEADROOM


def relative_difference(got: torch.Tensor, expected: torch.Tensor) -> float:
    """The largest |got − expected| over the eager output's largest magnitude (at least 1), taken where the eager
    output is finite; infinite where the two are not finite in the same places. A part whose eager output is not
    finite everywhere (fp16 overflow) makes a broken image with or without compiling; the compiled part is
    judged on the rest, instead of being refused for a NaN it did not cause."""
    got, expected = got.float(), expected.float()
    finite = torch.isfinite(expected)
    if not torch.equal(finite, torch.isfinite(got)):
        return float("inf")
    if not finite.any():
        return 0.0
    scale = max(float(expected[finite].abs().max()), 1.0)
    return float((got[finite] - expected[finite]).abs().max()) / scale


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    """Median milliseconds of a call, after one untimed."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()
    times = []
    for _ in range(TIMED_CALLS):
        sync()
        started = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


class Compiler:
    """Compiled steps by (part, module, layout), made one at a time on a background thread.

    `runner(...)` is cheap and never waits: it returns the compiled callable when it is ready and
    None otherwise, queueing the layout for compiling the first time it sees it. `build` and `load`
    are the compile and load steps (tests on the CPU may pass their own, to hold a compile back).
    """

    def __init__(self, root: Path, build: Callable[[StepSpec, Path], None] = build_in_process,
                 load: Callable[[Path, torch.nn.Module], Callable] = load_package,
                 free_memory: Callable[[torch.device], int | None] = device_free_memory) -> None:
        """`free_memory`: bytes free on a device for the compiler process, or None where that is not known."""
        self.root = root
        self.build = build
        self.load = load
        self.free_memory = free_memory
        self._lock = threading.Lock()
        self._slots: dict[tuple, object] = {}  # slot -> callable, or "queued" / "failed" / "slower"
        self._generation = 0
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._said: set[str] = set()
        self.require_faster = True  # a compiled step no faster than the eager one is not used

    def runner(self, part: str, module: torch.nn.Module, layout: tuple, tensors: list[torch.Tensor],
               scale: int = 8) -> Callable[..., torch.Tensor] | None:
        """The compiled step of `part` for these inputs, or None (queued the first time). `scale`: image
        pixels per latent, for the notices."""
        slot = (part, id(module), layout, *((t.shape, t.dtype, t.device) for t in tensors))
        with self._lock:
            found = self._slots.get(slot)
            if found is None:
                reason = unsupported(tensors[0].device)
                if reason is not None:
                    self._slots[slot] = "failed"
                    if reason not in self._said:
                        self._said.add(reason)
                        notices.post(f"Steps are not compiled for this device: {reason}. Generating as before.")
                    return None
                self._slots[slot] = "queued"
                spec = StepSpec.of(part, module, layout, tensors)
                self._queue.put(_Job(slot, self._generation, part, module, layout, [t.detach().clone() for t in tensors],
                                     spec, spec.package_name(device_name(tensors[0].device)),
                                     _describe(part, tensors, scale)))
                self._idle.clear()
                if self._thread is None:
                    self._thread = threading.Thread(target=self._work, name="compiler", daemon=True)
                    self._thread.start()
        return found if callable(found) else None

    def weights_changed(self) -> None:
        """The weights were written in place (LoRAs fused or unfused): every compiled step recomputes what
        it folded from them before its next call."""
        with self._lock:
            ready = [value for value in self._slots.values() if callable(value)]
        for step in ready:
            refresh = getattr(step, "refresh", None)
            if refresh is not None:
                refresh()

    def forget(self) -> None:
        """Drop every compiled step (their weights are going); a job under way is discarded when it ends."""
        with self._lock:
            self._generation += 1
            self._slots.clear()
            while not self._queue.empty():
                self._queue.get_nowait()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or compiling (benchmarks and tests); False on timeout."""
        return self._idle.wait(timeout)

    def status(self) -> dict[str, int]:
        with self._lock:
            values = list(self._slots.values())
        return {"ready": sum(callable(v) for v in values), **{state: values.count(state)
                                                              for state in ("queued", "failed", "slower")}}

    # -- the background thread -------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                outcome = self._make(job)
            except Exception as error:  # noqa: BLE001 - any failure leaves the layout eager, said once
                log.warning("compiling %s failed; it stays eager", job.what, exc_info=True)
                notices.post(f"Could not optimise {job.what} for this device ({type(error).__name__}); generating "
                             "as before. The worker log has the details.")
                outcome = "failed"
            with self._lock:
                if job.generation == self._generation:
                    self._slots[job.slot] = outcome
                if self._queue.empty():
                    self._idle.set()

    def _make(self, job: _Job):
        what = job.what
        device = job.example[0].device
        path = self.root / job.name
        compiled_s = None
        if not path.is_file():
            need, free = compile_memory(job.module), self.free_memory(device)
            if free is not None and free < need:
                # The compiler process would run out of memory, and could starve the images being made.
                log.info("not compiling %s: it needs %.1f GiB free on the device, %.1f GiB is", what, need / 2**30,
                         free / 2**30)
                if "memory" not in self._said:
                    self._said.add("memory")
                    notices.post(f"Not optimising {what} for this GPU: compiling needs about {need / 2**30:.1f} GiB "
                                 f"of free GPU memory and {free / 2**30:.1f} GiB is free. Generating as before.")
                return "failed"
            notices.post(f"Optimising for this device: compiling {what}. Images keep coming meanwhile.", busy=True)
            started = time.perf_counter()
            self.root.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.partial.pt2")
            try:
                self.build(job.spec, partial)
                replace_file(partial, path)
            finally:
                partial.unlink(missing_ok=True)
            compiled_s = time.perf_counter() - started
            self._prune()
        else:
            os.utime(path)  # a package's time is its last use
        with torch.inference_mode(), DEVICE_WORK:
            step = STEPS[job.part](sharing_weights(job.module), job.layout).eval()
            started = time.perf_counter()
            runner = self.load(path, step)
            loaded_s = time.perf_counter() - started
            example = job.example
            expected = step(*example)
            got = runner(*example)
            difference = relative_difference(got, expected)
            if not difference <= TOLERANCE:
                raise ValueError(f"the compiled output differs from the eager one by {difference:.3g} of its size")
            eager_ms = _timed(lambda: step(*example), device)
            fast_ms = _timed(lambda: runner(*example), device)
        how = f"compiled in {compiled_s:.0f} s and kept" if compiled_s is not None else f"loaded in {loaded_s:.1f} s"
        log.info("%s: eager %.2f ms, compiled %.2f ms (%s; max difference %.2g of its size)", what, eager_ms, fast_ms, how,
                 difference)
        if fast_ms >= eager_ms and self.require_faster:
            notices.post(f"Compiled {what} was no faster ({fast_ms:.1f} vs {eager_ms:.1f} ms); staying with the "
                         "plain path.")
            return "slower"
        notices.post(f"Optimised {what}: {eager_ms:.1f} → {fast_ms:.1f} ms per call ({how}).")
        return runner

    def _prune(self) -> None:
        """Keep the KEEP most recently used packages, and no partial one older than a day (a compiler
        process stopped by a crash)."""
        packages = sorted((p for p in self.root.glob("*.pt2") if not p.name.startswith(".")),
                          key=lambda p: p.stat().st_mtime, reverse=True)
        stale = [p for p in self.root.glob(".*.partial.pt2") if time.time() - p.stat().st_mtime > 86400]
        for old in packages[KEEP:] + stale:
            old.unlink(missing_ok=True)


def default_root() -> Path:
    from hypersd_desktop.core.paths import AppPaths

    return AppPaths.default().cache / "compiled"


def main(argv: list[str]) -> int:
    """The compiler process: `python -m hypersd_desktop.engine.compiled SPEC_JSON PACKAGE_PATH`."""
    logging.basicConfig(level=logging.WARNING)
    spec = StepSpec(**json.loads(argv[0]))
    build_package(spec, Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
