"""A base model that is a Hyper-SD file itself (ByteDance's ComfyUI checkpoint of the 1-step SDXL UNet): the Generate
tab, the batch dialog and the Draw tab run it with its own recipe and offer no other on top."""

from __future__ import annotations

COMFYUI_NAME = "Hyper-SDXL-1step-Unet-Comfyui.fp16.safetensors"


def _choose(box, name: str) -> None:
    box.setCurrentIndex(next(i for i in range(box.count()) if box.itemData(i).name == name))


def _items(box) -> list[str]:
    return [box.itemText(i) for i in range(box.count())]


def test_the_comfyui_1_step_checkpoint_runs_with_its_recipe_everywhere(qtbot, idle_app, tiny_sdxl, hyper_lora,
                                                                        tmp_path):
    from diffusers import StableDiffusionXLPipeline

    import ldm_format

    checkpoint = ldm_format.save_single_file(StableDiffusionXLPipeline.from_pretrained(tiny_sdxl),
                                             tmp_path / COMFYUI_NAME)
    library = idle_app.library
    for path in (checkpoint, tiny_sdxl, hyper_lora("Hyper-SDXL-8steps-lora")):
        library.import_path(path)
    assert library.registry.find(str(checkpoint)).recipe == "Hyper-SDXL-1step-Unet"
    window = idle_app.window
    window.models.models_changed.emit()  # as after an import in the Models tab: every model list is filled again
    window.prompt.setPlainText("a lighthouse")

    _choose(window.model_box, "sdxl")  # the same architecture as a plain model: the LoRAs are offered
    assert _items(window.hyper_box) == ["None (plain model)", "Hyper-SDXL-8steps-lora"]
    _choose(window.model_box, "Hyper-SDXL-1step-Unet-Comfyui.fp16")
    assert _items(window.hyper_box) == ["Built into the model (Hyper-SDXL-1step-Unet)"]
    request = window.build_request()
    assert (request.loras, request.unet, request.steps) == ((), None, 1)
    assert not window.steps.isEnabled() and not window.guidance.isEnabled()
    window.apply_request(request)  # reuse keeps the built-in recipe
    assert window.build_request() == request

    dialog = window.open_batch()
    dialog.prompts.setPlainText("a castle\na dragon")
    dialog.folder.setText(str(tmp_path / "batch"))
    assert _items(dialog.hyper_box) == ["Built into the model (Hyper-SDXL-1step-Unet)"]
    assert {(unit.request.loras, unit.request.unet) for unit in dialog.build_spec().units} == {((), None)}
    dialog.reject()

    draw = window.draw
    _choose(draw.model_box, "Hyper-SDXL-1step-Unet-Comfyui.fp16")
    assert _items(draw.hyper_box) == ["Built into the model (Hyper-SDXL-1step-Unet)"]
