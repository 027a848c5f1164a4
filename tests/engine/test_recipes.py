"""The recipe table and the choice of Hyper-SD file for steps and guidance."""

from __future__ import annotations

import pytest

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.engine.recipes import (
    RECIPES, RECIPES_BY_ID, choose_recipe, recipe_for_checkpoint, recipe_for_file, settings_warnings,
)

R = RECIPES_BY_ID


def test_table_covers_every_published_file():
    assert len(RECIPES) == 13
    assert R["Hyper-SDXL-1step-Unet"].scheduler == "lcm" and R["Hyper-SDXL-1step-Unet"].timesteps == (800,)
    assert R["Hyper-SD15-1step-lora"].scheduler == "tcd" and R["Hyper-SD15-1step-lora"].eta == 1.0
    assert R["Hyper-SDXL-12steps-CFG-lora"].uses_guidance and not R["Hyper-SDXL-4steps-lora"].uses_guidance
    assert {r.scheduler for r in RECIPES if not r.unified and r.kind == "lora"} == {"ddim-trailing"}


@pytest.mark.parametrize(
    ("installed", "steps", "guidance", "expected"),
    [
        (["Hyper-SD15-1step-lora"], 3, 0, "Hyper-SD15-1step-lora"),
        (["Hyper-SD15-1step-lora", "Hyper-SD15-4steps-lora"], 4, 0, "Hyper-SD15-4steps-lora"),
        (["Hyper-SD15-1step-lora", "Hyper-SD15-4steps-lora"], 3, 0, "Hyper-SD15-1step-lora"),
        (["Hyper-SD15-1step-lora", "Hyper-SD15-8steps-CFG-lora"], 8, 6, "Hyper-SD15-8steps-CFG-lora"),
        (["Hyper-SD15-8steps-CFG-lora", "Hyper-SD15-12steps-CFG-lora"], 10, 5, "Hyper-SD15-12steps-CFG-lora"),
        (["Hyper-SDXL-1step-lora", "Hyper-SDXL-1step-Unet"], 1, 0, "Hyper-SDXL-1step-Unet"),
        (["Hyper-SDXL-1step-lora", "Hyper-SDXL-1step-Unet"], 2, 0, "Hyper-SDXL-1step-lora"),
        (["Hyper-SDXL-2steps-lora", "Hyper-SDXL-8steps-lora"], 6, 0, "Hyper-SDXL-8steps-lora"),
    ],
)
def test_choose_recipe(installed, steps, guidance, expected):
    arch = R[installed[0]].architecture
    assert choose_recipe(arch, [R[i] for i in installed], steps, guidance).id == expected


def test_choose_recipe_ignores_the_other_architecture():
    with pytest.raises(InputError, match="No Hyper-SD file for SDXL"):
        choose_recipe("sdxl", [R["Hyper-SD15-1step-lora"]], 1)


def test_file_names_are_recognised_case_insensitively():
    assert recipe_for_file("/models/hyper-sdxl-4steps-lora.safetensors").id == "Hyper-SDXL-4steps-lora"
    assert recipe_for_file("C:/x/Hyper-SD15-8steps-CFG-lora.safetensors").id == "Hyper-SD15-8steps-CFG-lora"
    assert recipe_for_file("/models/some-style.safetensors") is None


def test_file_names_as_downloads_and_tools_leave_them_are_recognised():
    """A browser's second copy, a precision suffix, underscores or no separators; a file named beyond the published
    name (someone's own LoRA) is not one of them."""
    for name, recipe in {"Hyper-SDXL-8steps-lora (1).safetensors": "Hyper-SDXL-8steps-lora",
                         "hyper_sd15_1step_lora.safetensors": "Hyper-SD15-1step-lora",
                         "Hyper-SD15-8steps-CFG-lora.fp16.safetensors": "Hyper-SD15-8steps-CFG-lora",
                         "HyperSDXL-12steps-CFG-lora.safetensors": "Hyper-SDXL-12steps-CFG-lora",
                         "D:\\ComfyUI\\models\\unet\\Hyper-SDXL-1step-Unet.safetensors": "Hyper-SDXL-1step-Unet",
                         # Fooocus's Hyper-SD performance mode downloads the 4-step SDXL LoRA under this name
                         "Fooocus/models/loras/sdxl_hyper_sd_4step_lora.safetensors": "Hyper-SDXL-4steps-lora"}.items():
        assert recipe_for_file(name).id == recipe, name
    for name in ("Hyper-SD15-8steps-lora-myfinetune.safetensors", "not-Hyper-SDXL-8steps-lora.safetensors",
                 "Hyper-SDXL-1step-Unet-Comfyui.fp16.safetensors"):
        assert recipe_for_file(name) is None, name
    assert recipe_for_checkpoint("/m/Hyper-SDXL-1step-Unet-Comfyui.fp16.safetensors").id == "Hyper-SDXL-1step-Unet"
    assert recipe_for_checkpoint("/m/Hyper-SDXL-1step-Unet.safetensors") is None


def test_warnings():
    assert settings_warnings(R["Hyper-SD15-4steps-lora"], 4, 0, "ddim-trailing", False) == []
    (cfg,) = settings_warnings(R["Hyper-SD15-8steps-CFG-lora"], 8, 0.0, "ddim-trailing", False)
    assert "guidance 5–8" in cfg
    (sched,) = settings_warnings(R["Hyper-SD15-1step-lora"], 4, 0, "ddim-trailing", False)
    assert "tcd" in sched and "auto" in sched
    (neg,) = settings_warnings(R["Hyper-SDXL-2steps-lora"], 2, 0, "ddim-trailing", True)
    assert "negative prompt has no effect" in neg


def test_a_tag_naming_no_listed_lora_is_named_and_an_applied_one_is_not():
    """A prompt's `<lora:…>` tags: one whose LoRA the request lists (by its file's name, as the window and batch
    jobs add them) says nothing; one that names no listed LoRA is named in the warning."""
    from hypersd_desktop.engine.planning import tag_warnings
    from hypersd_desktop.engine.types import GenerationRequest, LoraSpec

    request = GenerationRequest(prompt="a harbour <lora:watercolour_wash:0.4>, <lora:not_installed:1>",
                                base_model="/m", loras=(LoraSpec("/l/watercolour_wash.safetensors", 0.4),))
    (warning,) = tag_warnings(request)
    assert "<lora:not_installed:1> tag is" in warning and "watercolour_wash" not in warning
    assert tag_warnings(request.replace(prompt="a harbour <lora:watercolour_wash:0.4>")) == []
