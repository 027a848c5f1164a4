"""Steps compiled in the background: requests never wait for a compile, take the compiled step once it is
ready and checked, keep it on disk for the next start, and stay eager when compiling fails.

The engine compiles on CUDA by itself; here it is given a `Compiler`, which compiles on any device. The
orchestration tests hold the compile back with a gate and compile by `torch.export` alone, in this process
(seconds; no image is made while it traces); the `slow` tests compile with AOTInductor in the compiler
process, as on the GPU (a minute or two on this CPU, with the system's C++ compiler), while images are made.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading

import numpy as np
import pytest
import torch

from hypersd_desktop.engine import GenerationRequest, LoraSpec, compiled, graphs, notices
from hypersd_desktop.engine.torch_engine import TorchEngine

from .test_graphs import rerun_recorder


def pixels(result) -> np.ndarray:
    return np.asarray(result.image, dtype=np.int16)


def same(ours, theirs) -> int:
    return max(int(np.abs(pixels(a) - pixels(b)).max()) for a, b in zip(ours, theirs, strict=True))


class Counted:
    """A loaded step that counts its calls; it holds a copy of the step's weights, taken again on refresh."""

    def __init__(self, module, step, shift: float = 0.0) -> None:
        self.module = module
        self.step = step
        self.shift = shift
        self.calls = 0
        self.refresh()

    def refresh(self) -> None:
        with torch.inference_mode():  # loaded in the compiler thread's inference mode
            self.module.load_state_dict(self.step.state_dict(), strict=False)

    def __call__(self, *tensors):
        self.calls += 1
        return self.module(*tensors) + self.shift


class ExportOnly:
    """Compile and load by torch.export alone (no inductor): the same files on disk, in seconds. `gate` holds
    each build back until set; `fail` makes the build raise; `shift` makes the loaded step wrong."""

    def __init__(self, fail: bool = False, shift: float = 0.0) -> None:
        self.gate = threading.Event()
        self.fail = fail
        self.shift = shift
        self.built: list[str] = []
        self.loaded: list[Counted] = []

    def build(self, spec, path) -> None:
        assert self.gate.wait(120)
        step, example = spec.build_step()  # from the spec alone, as the compiler process does
        self.built.append(type(step).__name__)
        if self.fail:
            raise RuntimeError("the compiler gave up")
        with torch.no_grad():
            torch.export.save(torch.export.export(step, tuple(example), strict=False), str(path))

    def load(self, path, step):
        loaded = Counted(torch.export.load(str(path)).module(), step, self.shift)  # copies the live weights
        self.loaded.append(loaded)
        return loaded


@pytest.fixture
def said():
    heard: list[tuple[str, bool]] = []
    stop = notices.listen(lambda text, busy: heard.append((text, busy)))
    yield heard
    stop()


@pytest.fixture
def sd15(tiny_sd15, hyper_lora):
    return GenerationRequest(prompt="a cat", base_model=str(tiny_sd15), seed=5, width=64, height=64, steps=2,
                             loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),))


def compiler_for(tmp_path, steps: ExportOnly) -> compiled.Compiler:
    compiler = compiled.Compiler(tmp_path / "compiled", build=steps.build, load=steps.load)
    compiler.require_faster = False  # export alone is not faster; the rule is for the real compiler
    return compiler


def test_requests_run_eagerly_while_compiling_and_take_the_compiled_steps_when_ready(sd15, tmp_path, said):
    recorded = []
    steps = ExportOnly()
    compiler = compiler_for(tmp_path, steps)
    engine = TorchEngine(graph_recorder=rerun_recorder(recorded), compiler=compiler)
    request = sd15.replace(batch_size=2)
    eager = TorchEngine().generate(request.replace(compile=False, cuda_graphs=False))

    meanwhile = engine.generate(request)  # the compile is held back: this cannot wait for it
    assert same(meanwhile, eager) <= 1
    assert compiler.status()["queued"] == 2  # the UNet and the VAE decode
    assert len(recorded) == 2  # graphs of the eager steps: the compile runs elsewhere
    assert said[0] == ("Optimising for this device: compiling the UNet for 2 × 64 × 64. Images keep coming "
                       "meanwhile.", True)
    steps.gate.set()
    assert compiler.wait(120)
    assert compiler.status() == {"ready": 2, "queued": 0, "failed": 0, "slower": 0}
    assert sorted(steps.built) == ["DecodeStep", "UNetStep"]
    assert any(text.startswith("Optimised the UNet") and not busy for text, busy in said)
    assert len(list((tmp_path / "compiled").glob("*.pt2"))) == 2

    before = [counted.calls for counted in steps.loaded]  # the check's and the timing's calls
    assert same(engine.generate(request), eager) <= 1
    # 2 steps and 2 decodes, the first of each recorded (one call) then replayed, as the CPU recorder does
    assert [counted.calls - calls for counted, calls in zip(steps.loaded, before)] == [3, 3]
    assert len(recorded) == 4  # recorded again, now around the compiled steps
    wrapper = engine._loaded.pipe.unet.__dict__["forward"]
    assert all(entry.compiled is not None for entry in wrapper.graphed.entries.values())
    again = request.replace(seed=6)
    assert same(engine.generate(again), TorchEngine().generate(again.replace(compile=False, cuda_graphs=False))) <= 1
    assert len(recorded) == 4  # replayed
    half = request.replace(loras=(LoraSpec(request.loras[0].path, 0.5),))  # fused in place: the steps see it
    assert same(engine.generate(half), TorchEngine().generate(half.replace(compile=False, cuda_graphs=False))) <= 1

    later = ExportOnly(fail=True)  # after a restart a build would fail: the packages must come from the disk
    restarted = compiler_for(tmp_path, later)
    engine = TorchEngine(compiler=restarted)
    engine.generate(request)
    assert restarted.wait(120)
    assert restarted.status()["ready"] == 2 and later.built == []
    assert sum("loaded in" in text for text, _ in said) == 2
    assert same(engine.generate(request), eager) <= 1


def test_a_failed_compile_leaves_the_layout_eager_and_says_so_once(sd15, tmp_path, said):
    steps = ExportOnly(fail=True)
    steps.gate.set()
    compiler = compiler_for(tmp_path, steps)
    engine = TorchEngine(compiler=compiler)
    engine.generate(sd15)
    assert compiler.wait(120)
    again = engine.generate(sd15)
    assert compiler.wait(120)
    assert compiler.status()["failed"] == 2 and len(steps.built) == 2  # never tried again this session
    assert same(again, TorchEngine().generate(sd15.replace(compile=False))) <= 1
    failures = [text for text, _ in said if text.startswith("Could not optimise")]
    assert len(failures) == 2 and "RuntimeError" in failures[0] and "generating as before" in failures[0]
    assert not list((tmp_path / "compiled").glob("*"))  # nothing half-written kept


def test_no_compile_starts_without_room_on_the_device_for_it(sd15, tmp_path, said):
    """An 8 GB card holding SDXL has no room for the compiler process's copy of the UNet: compiling would fail,
    and could take memory the images being made need."""
    steps = ExportOnly()
    steps.gate.set()
    asked = []

    def little_free(device):
        asked.append(device.type)
        return compiled.compile_memory(engine._loaded.pipe.unet) - 1

    compiler = compiled.Compiler(tmp_path / "compiled", build=steps.build, load=steps.load, free_memory=little_free)
    compiler.require_faster = False
    engine = TorchEngine(compiler=compiler)
    first = engine.generate(sd15)
    assert compiler.wait(120)
    # Room for the VAE's compile (a much smaller part), not for the UNet's.
    assert steps.built == ["DecodeStep"] and asked == ["cpu", "cpu"]
    assert compiler.status() == {"ready": 1, "queued": 0, "failed": 1, "slower": 0}
    assert same(first, TorchEngine().generate(sd15.replace(compile=False))) <= 1
    refusals = [text for text, _ in said if text.startswith("Not optimising")]
    assert refusals == [f"Not optimising the UNet for 1 × 64 × 64 for this GPU: compiling needs about "
                        f"{compiled.compile_memory(engine._loaded.pipe.unet) / 2**30:.1f} GiB of free GPU memory "
                        f"and 1.0 GiB is free. Generating as before."]
    assert [text for text, busy in said if busy] == [  # "compiling…" only for the compile that started
        "Optimising for this device: compiling the VAE decoder for 1 × 64 × 64. Images keep coming meanwhile."]


@pytest.mark.slow
def test_a_compiled_step_that_gives_other_numbers_is_never_used(sd15, tmp_path, said):
    steps = ExportOnly(shift=0.5)
    steps.gate.set()
    compiler = compiler_for(tmp_path, steps)
    engine = TorchEngine(compiler=compiler)
    request = sd15.replace(steps=1)
    engine.generate(request)
    assert compiler.wait(120)
    assert compiler.status()["failed"] == 2
    assert same(engine.generate(request), TorchEngine().generate(request.replace(compile=False))) <= 1
    assert all(counted.calls == 1 for counted in steps.loaded)  # the check's call only
    assert any(text.startswith("Could not optimise the UNet") and "ValueError" in text for text, _ in said)


@pytest.mark.slow
def test_sdxl_steps_with_their_added_conditions_compile_and_give_the_eager_image(tiny_sdxl, hyper_lora, tmp_path):
    request = GenerationRequest(prompt="a kite", base_model=str(tiny_sdxl), seed=3, width=64, height=64, steps=1,
                                loras=(LoraSpec(str(hyper_lora("Hyper-SDXL-1step-lora"))),))
    steps = ExportOnly()
    steps.gate.set()
    compiler = compiler_for(tmp_path, steps)
    engine = TorchEngine(compiler=compiler)
    engine.generate(request)
    assert compiler.wait(120) and compiler.status()["ready"] == 2
    before = [counted.calls for counted in steps.loaded]
    assert same(engine.generate(request), TorchEngine().generate(request.replace(compile=False))) <= 1
    assert [counted.calls - calls for counted, calls in zip(steps.loaded, before)] == [1, 1]


def test_a_graph_of_the_eager_step_is_recorded_again_when_the_compiled_one_arrives():
    class Later:
        runner_ready = None

        def runner(self, part, module, layout, tensors, scale=8):
            return self.runner_ready

    recorded = []
    later = Later()
    graphed = graphs.Graphed(lambda layout, x: x * 2, rerun_recorder(recorded), compiler=later)
    x = torch.ones(4)
    assert graphed((), [x]).tolist() == [2.0] * 4 and len(recorded) == 1
    assert graphed((), [x]).tolist() == [2.0] * 4 and len(recorded) == 1
    later.runner_ready = lambda x: x * 2 + 0  # the same numbers, by another callable
    assert graphed((), [x]).tolist() == [2.0] * 4 and len(recorded) == 2
    assert graphed((), [x + 1]).tolist() == [4.0] * 4 and len(recorded) == 2


def test_a_compiled_step_that_cannot_be_recorded_as_a_graph_runs_without_one():
    class Ready:
        def runner(self, part, module, layout, tensors, scale=8):
            return compiled_step

    def compiled_step(x):
        return x * 2

    def recorder(fn, inputs):
        if fn is compiled_step:
            raise RuntimeError("operation not permitted when stream is capturing")
        return rerun_recorder([])(fn, inputs)

    graphed = graphs.Graphed(lambda layout, x: x * 2, recorder, compiler=Ready())
    x = torch.ones(4)
    assert graphed((), [x]).tolist() == [2.0] * 4
    assert graphed((), [x + 1]).tolist() == [4.0] * 4  # not tried again
    assert len(graphed.ungraphable) == 1 and not graphed.entries


def test_compiling_off_or_a_memory_option_runs_eagerly_without_asking_the_compiler(sd15, tmp_path):
    compiler = compiler_for(tmp_path, ExportOnly())
    engine = TorchEngine(compiler=compiler)
    for options in ({"compile": False}, {"attention_slicing": True}, {"vae_tiling": True}):
        engine.generate(sd15.replace(**options))
        assert compiler.status() == {"ready": 0, "queued": 0, "failed": 0, "slower": 0}, options
        assert "forward" not in engine._loaded.pipe.unet.__dict__


def test_a_package_is_named_by_what_makes_its_kernels_not_by_the_weights(tiny_sd15, tmp_path):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny_sd15, subfolder="unet")
    shutil.copytree(tiny_sd15 / "unet", tmp_path / "fine-tune")
    other = UNet2DConditionModel.from_pretrained(tmp_path / "fine-tune")
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(1.0)
    inputs = [torch.zeros(1, 4, 32, 32), torch.tensor(999), torch.zeros(1, 77, 32)]
    name = compiled.package_name("unet", unet, (), inputs)
    assert compiled.package_name("unet", other, (), inputs) == name  # a fine-tune reuses the kernels
    assert compiled.package_name("unet", unet, (), [torch.zeros(2, 4, 32, 32), *inputs[1:]]) != name
    assert compiled.package_name("unet", unet, (), [inputs[0].half(), *inputs[1:]]) != name
    assert compiled.package_name("vae", unet, (), inputs) != name
    unet.to(memory_format=torch.channels_last)  # the kernels index the weights otherwise
    assert compiled.package_name("unet", unet, (), inputs) != name


def test_a_step_spec_rebuilds_the_module_without_its_weights(tiny_sdxl):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny_sdxl, subfolder="unet").half()
    layout = (("added_cond_kwargs", ("text_embeds", "time_ids")),)
    inputs = [torch.zeros(2, 4, 32, 32), torch.tensor(999), torch.zeros(2, 77, 64), torch.zeros(2, 32),
              torch.zeros(2, 6)]
    spec = compiled.StepSpec.of("unet", unet, layout, inputs)
    again = compiled.StepSpec(**json.loads(json.dumps(dataclasses.asdict(spec))))  # as the compiler process gets it
    assert again == spec and again.tuple_layout() == layout
    step, example = again.build_step()
    assert type(step.unet) is UNet2DConditionModel
    assert {k: v for k, v in step.unet.config.items() if not k.startswith("_")} == {
        k: v for k, v in unet.config.items() if not k.startswith("_")}
    assert next(step.parameters()).dtype == torch.float16
    assert [(tuple(t.shape), t.dtype) for t in example] == [(tuple(t.shape), t.dtype) for t in inputs]
    assert sorted(n for n, _ in step.named_parameters()) == sorted(f"unet.{n}" for n, _ in unet.named_parameters())
    assert spec.memory_format == "contiguous" and step.unet.conv_in.weight.is_contiguous()
    unet.to(memory_format=torch.channels_last)
    spec = compiled.StepSpec.of("unet", unet, layout, inputs)
    assert spec.memory_format == "channels_last"
    step, _ = compiled.StepSpec(**json.loads(json.dumps(dataclasses.asdict(spec)))).build_step()
    weight = step.unet.conv_in.weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()


@pytest.mark.slow
@pytest.mark.skipif(compiled.unsupported(torch.device("cpu")) is not None, reason="no C++ compiler here")
def test_aot_inductor_steps_equal_eager_ones_and_come_back_from_the_disk(sd15, tmp_path, monkeypatch, said):
    """The real compiler: images within 1/255 of eager ones; a LoRA fused in place shows through (the package
    holds no weights); after a restart the packages load from the disk (no inductor cache to help)."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    compiler = compiled.Compiler(tmp_path / "compiled")
    compiler.require_faster = False  # the shared CPU's timings are noisy; equality is what this checks
    engine = TorchEngine(compiler=compiler)
    request = sd15.replace(batch_size=2)
    eager = TorchEngine().generate(request.replace(compile=False))
    assert same(engine.generate(request), eager) <= 1  # queues the UNet and the VAE decode
    made = 0
    while not compiler.wait(0):  # images keep coming while the compiler process works
        assert same(engine.generate(request), eager) <= 1
        made += 1
    assert made >= 5
    assert compiler.status()["ready"] == 2, said
    assert same(engine.generate(request), eager) <= 1

    half = request.replace(loras=(LoraSpec(request.loras[0].path, 0.5),))
    assert same(engine.generate(half), TorchEngine().generate(half.replace(compile=False))) <= 1

    shutil.rmtree(tmp_path / "inductor")
    restarted = compiled.Compiler(tmp_path / "compiled", build=lambda *_: pytest.fail("built again"))
    restarted.require_faster = False
    again = TorchEngine(compiler=restarted)
    assert same(again.generate(request), eager) <= 1
    assert restarted.wait(120) and restarted.status()["ready"] == 2
    assert same(again.generate(request), eager) <= 1
    assert sum("loaded in" in text for text, _ in said) == 2


def test_a_compiled_step_is_judged_where_the_eager_output_is_finite():
    """An fp16 part that overflows gives NaN with or without compiling: the compiled part must then give NaN in the
    same places and the eager numbers elsewhere (a full-size model with random weights was refused for its NaN)."""
    eager = torch.tensor([[1.0, float("nan")], [-4.0, float("inf")]], dtype=torch.float16)
    same_places = eager.clone()
    same_places[0, 0] = 1.04
    assert compiled.relative_difference(same_places, eager) == pytest.approx(0.04 / 4, rel=0.01)
    assert compiled.relative_difference(eager.clone(), eager) == 0.0
    nan_elsewhere = eager.clone()
    nan_elsewhere[1, 0] = float("nan")
    assert compiled.relative_difference(nan_elsewhere, eager) == float("inf")
    finite_where_nan = torch.nan_to_num(eager)
    assert compiled.relative_difference(finite_where_nan, eager) == float("inf")
    small = torch.tensor([0.1, 0.2])
    assert compiled.relative_difference(small + 0.05, small) == pytest.approx(0.05)  # scaled by at least 1
    assert compiled.relative_difference(torch.full((2,), float("nan")), torch.full((2,), float("nan"))) == 0.0
