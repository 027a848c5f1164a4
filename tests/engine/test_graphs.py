"""The GPU fast path: the UNet and VAE decode replayed from graphs give the eager images.

CUDA graphs need an NVIDIA GPU. On the CPU the engine takes a recorder with the same contract as the
CUDA one: it runs the call once on the static inputs, and a replay recomputes from whatever the static
inputs hold then. A wrapper that forgot to copy a call's inputs into them, keyed graphs wrongly, or
returned a buffer the next replay overwrites would give a wrong image here as on the GPU. The `gpu`
test records real CUDA graphs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hypersd_desktop.engine import GenerationRequest, LoraSpec, graphs
from hypersd_desktop.engine.torch_engine import TorchEngine


def rerun_recorder(recorded: list):
    def record(fn, inputs):
        recorded.append(tuple(tuple(t.shape) for t in inputs))
        output = fn(*inputs)

        def replay():
            again = fn(*inputs)
            for static, value in zip(output, again) if isinstance(output, tuple) else [(output, again)]:
                static.copy_(value)

        return output, replay

    return record


def pixels(result) -> np.ndarray:
    return np.asarray(result.image, dtype=np.int16)


def assert_same_images(ours, eager):
    assert len(ours) == len(eager)
    for a, b in zip(ours, eager):
        assert np.abs(pixels(a) - pixels(b)).max() <= 1


@pytest.fixture
def sd15(tiny_sd15, hyper_lora):
    return GenerationRequest(prompt="a cat", base_model=str(tiny_sd15), seed=5, width=64, height=64,
                             loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),))


@pytest.mark.parametrize("steps", [1, 4])
def test_graphed_images_equal_eager_ones_sd15(sd15, steps):
    recorded = []
    engine = TorchEngine(graph_recorder=rerun_recorder(recorded))
    request = sd15.replace(steps=steps, batch_size=2)
    first = engine.generate(request)
    again = engine.generate(request.replace(seed=9))
    eager = TorchEngine().generate(request.replace(cuda_graphs=False))
    eager_again = TorchEngine().generate(request.replace(seed=9, cuda_graphs=False))
    assert_same_images(first, eager)
    assert_same_images(again, eager_again)  # a replay reads the new inputs, not the recorded ones
    assert np.abs(pixels(first[0]) - pixels(again[0])).max() > 10
    # One UNet graph for the batch of 2 and one VAE graph for the 1-image decode, whatever the steps.
    assert sorted(len(shapes) for shapes in recorded) == [1, 3]
    assert graphs.recorded(engine._loaded.pipe) == 2


def test_graphed_images_equal_eager_ones_sdxl_with_added_conditions(tiny_sdxl, hyper_lora):
    recorded = []
    request = GenerationRequest(prompt="a lighthouse", base_model=str(tiny_sdxl), seed=3, width=64, height=64,
                                steps=2, loras=(LoraSpec(str(hyper_lora("Hyper-SDXL-1step-lora"))),))
    ours = TorchEngine(graph_recorder=rerun_recorder(recorded)).generate(request)
    eager = TorchEngine().generate(request.replace(cuda_graphs=False))
    assert_same_images(ours, eager)
    unet_inputs = max(recorded, key=len)
    assert len(unet_inputs) == 5  # sample, timestep, prompt embeddings, text_embeds, time_ids


def test_a_new_size_records_new_graphs_and_a_lora_change_keeps_them(sd15, hyper_lora):
    recorded = []
    engine = TorchEngine(graph_recorder=rerun_recorder(recorded))
    engine.generate(sd15.replace(steps=2))
    engine.generate(sd15.replace(steps=1))
    assert len(recorded) == 2
    engine.generate(sd15.replace(steps=2, width=96))
    assert len(recorded) == 4
    # A LoRA weight is fused into the weights in place, so the recorded graphs read the new weights.
    changed = sd15.replace(steps=2, loras=(LoraSpec(sd15.loras[0].path, 0.5),))
    ours = engine.generate(changed)
    assert len(recorded) == 4
    assert_same_images(ours, TorchEngine().generate(changed.replace(cuda_graphs=False)))


def test_memory_options_the_setting_and_seamless_images_run_eagerly(sd15):
    recorded = []
    engine = TorchEngine(graph_recorder=rerun_recorder(recorded))
    engine.generate(sd15.replace(steps=1))
    assert graphs.installed(engine._loaded.pipe)
    for options in ({"attention_slicing": True}, {"vae_tiling": True}, {"cuda_graphs": False}, {"tiling": "both"}):
        engine.generate(sd15.replace(steps=1, **options))
        assert not graphs.installed(engine._loaded.pipe), options
        assert "forward" not in engine._loaded.pipe.unet.__dict__
    engine.generate(sd15.replace(steps=1))
    assert graphs.installed(engine._loaded.pipe)


def test_memory_options_take_effect_when_they_change_and_only_then(sd15, monkeypatch):
    """Slicing and tiling are set when a request changes them (setting slicing walks the whole UNet), and each
    request runs with its own: the image of a fresh engine."""
    engine = TorchEngine()
    pipe = None
    for options in ({}, {"attention_slicing": True}, {"attention_slicing": True}, {"vae_tiling": True}, {}):
        request = sd15.replace(steps=1, **options)
        ours = engine.generate(request)
        pipe = engine._loaded.pipe
        processors = {type(p).__name__ for p in pipe.unet.attn_processors.values()}
        assert processors == ({"SlicedAttnProcessor"} if options.get("attention_slicing") else {"AttnProcessor2_0"})
        assert pipe.vae.use_tiling == bool(options.get("vae_tiling"))
        assert_same_images(ours, TorchEngine().generate(request))
    set_again = []
    monkeypatch.setattr(type(pipe), "disable_attention_slicing", lambda self: set_again.append(1))
    engine.generate(sd15.replace(steps=1, seed=6))
    assert set_again == []


def test_graphs_are_cuda_only_without_a_recorder(sd15):
    engine = TorchEngine()
    engine.generate(sd15.replace(steps=1))
    assert not graphs.installed(engine._loaded.pipe)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graphs_equal_eager_on_cuda(sd15):
    request = sd15.replace(steps=4, batch_size=2, device="cuda", dtype="fp16")
    engine = TorchEngine()
    engine.generate(request)
    ours = engine.generate(request.replace(seed=11))
    assert graphs.recorded(engine._loaded.pipe) == 2
    assert_same_images(ours, TorchEngine().generate(request.replace(seed=11, cuda_graphs=False)))


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_controlnets_replay_from_graphs_as_the_unet_does(architecture, tiny_sd15, tiny_sdxl, hyper_lora, controlnets,
                                                         tmp_path):
    """Two ControlNets, one with a start and end (its scale is 0 outside them, a second graph): the images equal
    the eager ones, and a second drawing through the same graphs equals its eager image too."""
    from hypersd_desktop.core.images import InputImages
    from hypersd_desktop.engine import ControlSpec
    from pictures import edges_picture, init_picture, png

    store = InputImages(tmp_path / "inputs")
    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    lora = hyper_lora("Hyper-SDXL-1step-lora" if architecture == "sdxl" else "Hyper-SD15-1step-lora")
    net = str(controlnets[architecture])
    first, second = store.add(png(edges_picture())), store.add(png(init_picture()))
    request = GenerationRequest(prompt="a cat", base_model=str(base), seed=5, width=64, height=64, steps=4,
                                loras=(LoraSpec(str(lora)),),
                                controls=(ControlSpec(net, first, 0.8), ControlSpec(net, second, 0.5, end=0.5)))
    recorded = []
    engine = TorchEngine(graph_recorder=rerun_recorder(recorded), inputs=store)
    ours = engine.generate(request)
    assert_same_images(ours, TorchEngine(inputs=store).generate(request.replace(cuda_graphs=False)))
    wrappers = [module.__dict__.get("forward") for module in loaded_controlnets(engine)]
    assert wrappers and all(isinstance(wrapper, graphs.GraphedControlNet) for wrapper in wrappers)
    scales = {layout[0][0] for wrapper in wrappers for (layout, *_) in wrapper.graphed.entries}
    assert scales == {0.8, 0.5, 0.0}  # the second ControlNet's scale is 0 after its end
    swapped = request.replace(seed=6, controls=(ControlSpec(net, second, 0.8), ControlSpec(net, first, 0.5, end=0.5)))
    count = len(recorded)
    again = engine.generate(swapped)
    assert len(recorded) == count  # replayed, not recorded again
    assert_same_images(again, TorchEngine(inputs=store).generate(swapped.replace(cuda_graphs=False)))
    engine.generate(request.replace(cuda_graphs=False))
    assert not any(isinstance(module.__dict__.get("forward"), graphs.GraphedControlNet)
                   for module in loaded_controlnets(engine))


def loaded_controlnets(engine) -> list:
    return list(engine._controlnets._loaded.values())


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_channels_last_parts_give_the_images_of_contiguous_ones(architecture, tiny_sd15, tiny_sdxl, hyper_lora,
                                                                controlnets, tmp_path):
    """Each part laid out channels_last (as the UNet is on CUDA), replayed from graphs, with a ControlNet and a LoRA
    switched (fused in place into channels_last weights): the images of the parts as loaded."""
    from hypersd_desktop.core.images import InputImages
    from hypersd_desktop.engine import ControlSpec
    from hypersd_desktop.engine.devices import weights_layout
    from pictures import edges_picture, png

    store = InputImages(tmp_path / "inputs")
    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    prefix = "Hyper-SDXL" if architecture == "sdxl" else "Hyper-SD15"
    request = GenerationRequest(prompt="a cat", base_model=str(base), seed=5, width=64, height=64, steps=2,
                                loras=(LoraSpec(str(hyper_lora(f"{prefix}-1step-lora"))),))
    control = ControlSpec(str(controlnets[architecture]), store.add(png(edges_picture())), 0.7)
    requests = [request, request.replace(controls=(control,)),
                request.replace(loras=(LoraSpec(str(hyper_lora(f"{prefix}-2steps-lora"))),), seed=8)]
    laid_out = TorchEngine(graph_recorder=rerun_recorder([]), inputs=store, channels_last=("unet", "controlnet", "vae"))
    as_loaded = TorchEngine(graph_recorder=rerun_recorder([]), inputs=store, channels_last=())
    for one in requests:
        ours, theirs = laid_out.generate(one), as_loaded.generate(one)
        assert pixels(ours[0]).std() > 5
        assert_same_images(ours, theirs)
        if one.controls:
            (net,) = laid_out._controlnets._loaded.values()
            assert weights_layout(net) == "channels_last"
    pipe = laid_out._loaded.pipe
    assert weights_layout(pipe.unet) == weights_layout(pipe.vae) == "channels_last"
    assert weights_layout(as_loaded._loaded.pipe.unet) == "contiguous"
