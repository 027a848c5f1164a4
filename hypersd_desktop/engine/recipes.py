"""The Hyper-SD recipes as data, and the choice of recipe for a request.

One row per published Hyper-SD file (ByteDance/Hyper-SD model card): which base architecture
it is for, which scheduler and how many steps it was trained for, and whether it wants
classifier-free guidance. Everything that picks a scheduler or warns about settings reads this
table; nothing else looks at file names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

from hypersd_desktop.core.errors import ArchitectureMismatchError, InputError
from hypersd_desktop.core.vocab import Architecture, ModelKind, Scheduler

PLAIN_STEPS = 25
PLAIN_GUIDANCE = 7.0


@dataclass(frozen=True)
class Recipe:
    """How one Hyper-SD file is meant to be run.

    `steps` is the range of step counts it was trained for and `default_steps` the one used
    when a request names none. `guidance` is the default guidance scale and `guidance_range`
    the trained range (0–1 means no classifier-free guidance: one UNet pass per step).
    """

    id: str
    file_name: str
    architecture: Architecture
    kind: ModelKind  # LORA or UNET
    scheduler: Scheduler
    steps: tuple[int, int]
    default_steps: int
    guidance: float = 0.0
    guidance_range: tuple[float, float] = (0.0, 1.0)
    eta: float | None = None
    timesteps: tuple[int, ...] | None = None
    unified: bool = False

    @property
    def uses_guidance(self) -> bool:
        return self.guidance_range[1] > 1.0

    @property
    def label(self) -> str:
        return PurePath(self.file_name).stem


def _lora(arch: str, prefix: str, steps: int) -> Recipe:
    name = f"{prefix}-{steps}steps-lora"
    return Recipe(name, f"{name}.safetensors", arch, ModelKind.LORA, Scheduler.DDIM_TRAILING, (steps, steps), steps)


def _cfg_lora(arch: str, prefix: str, steps: int) -> Recipe:
    name = f"{prefix}-{steps}steps-CFG-lora"
    return Recipe(
        name, f"{name}.safetensors", arch, ModelKind.LORA, Scheduler.DDIM_TRAILING, (steps, steps), steps,
        guidance=5.0, guidance_range=(5.0, 8.0),
    )


def _unified(arch: str, prefix: str) -> Recipe:
    name = f"{prefix}-1step-lora"
    return Recipe(name, f"{name}.safetensors", arch, ModelKind.LORA, Scheduler.TCD, (1, 8), 1, eta=1.0, unified=True)


RECIPES: tuple[Recipe, ...] = (
    _unified(Architecture.SD15, "Hyper-SD15"),
    *(_lora(Architecture.SD15, "Hyper-SD15", n) for n in (2, 4, 8)),
    *(_cfg_lora(Architecture.SD15, "Hyper-SD15", n) for n in (8, 12)),
    _unified(Architecture.SDXL, "Hyper-SDXL"),
    *(_lora(Architecture.SDXL, "Hyper-SDXL", n) for n in (2, 4, 8)),
    *(_cfg_lora(Architecture.SDXL, "Hyper-SDXL", n) for n in (8, 12)),
    Recipe(
        "Hyper-SDXL-1step-Unet", "Hyper-SDXL-1step-Unet.safetensors", Architecture.SDXL, ModelKind.UNET, Scheduler.LCM, (1, 1), 1,
        timesteps=(800,),
    ),
)
RECIPES_BY_ID = {recipe.id: recipe for recipe in RECIPES}


def _name_key(name: str) -> str:
    """A file name as the recipes are looked up by: without its folder, weights suffix, precision suffix
    (`.fp16`), a browser's copy number (` (1)`), case and separators, so the names people's downloads and tools
    give a published file still find it: `hyper_sdxl_8steps_lora (1).safetensors`."""
    name = re.split(r"[\\/]", name)[-1].lower()  # a Windows path read on another system too
    name = re.sub(r"\.(safetensors|ckpt|pt|pth|bin)$", "", name)
    name = re.sub(r"\s*\(\d+\)$", "", name)
    name = re.sub(r"[-_. ](fp16|fp32|bf16|f16)$", "", name)
    return re.sub(r"[-_. ]+", "", name)


_BY_NAME = {_name_key(recipe.file_name): recipe for recipe in RECIPES}
# Published files other tools download under their own names: Fooocus's "Hyper-SD" performance fetches the 4-step
# SDXL LoRA as `sdxl_hyper_sd_4step_lora.safetensors` (its `PerformanceLoRA.HYPER_SD`), into its loras folder.
_BY_NAME[_name_key("sdxl_hyper_sd_4step_lora.safetensors")] = RECIPES_BY_ID["Hyper-SDXL-4steps-lora"]
# Whole checkpoints that are a Hyper-SD file: ByteDance's ComfyUI form of the 1-step SDXL UNet, which ComfyUI's
# Load Checkpoint reads (the UNet with SDXL's text encoders and VAE).
_CHECKPOINTS = {_name_key("Hyper-SDXL-1step-Unet-Comfyui.fp16.safetensors"): RECIPES_BY_ID["Hyper-SDXL-1step-Unet"]}


def recipe_for_file(path: str | PurePath) -> Recipe | None:
    """The Hyper-SD recipe a LoRA or UNet file is, judged by its published file name, or None."""
    return _BY_NAME.get(_name_key(str(path)))


def recipe_for_checkpoint(path: str | PurePath) -> Recipe | None:
    """The Hyper-SD recipe a whole checkpoint is built for, judged by its published file name, or None."""
    return _CHECKPOINTS.get(_name_key(str(path)))


def recipe_by_id(recipe_id: str) -> Recipe:
    try:
        return RECIPES_BY_ID[recipe_id]
    except KeyError:
        known = ", ".join(RECIPES_BY_ID)
        raise InputError(f"Unknown recipe {recipe_id!r}; known recipes: {known}.") from None


def choose_recipe(
    architecture: str,
    installed: list[Recipe] | tuple[Recipe, ...],
    steps: int,
    guidance: float = 0.0,
) -> Recipe:
    """Pick the installed Hyper-SD file that fits the wanted steps and guidance best.

    Preference: with guidance above 1, a CFG LoRA (the fewest steps at or above `steps`);
    for one SDXL step, the 1-step UNet; a LoRA trained for exactly `steps`; the unified LoRA
    (TCD, 1–8 steps); otherwise the closest step count. Raises `InputError` when nothing
    installed fits the architecture.
    """
    candidates = [recipe for recipe in installed if recipe.architecture == architecture]
    if not candidates:
        raise InputError(
            f"No Hyper-SD file for {Architecture(architecture).label} is installed; "
            "download one in the model manager."
        )
    cfg = [recipe for recipe in candidates if recipe.uses_guidance]
    plain = [recipe for recipe in candidates if not recipe.uses_guidance]
    if guidance > 1.0 and cfg:
        at_least = [recipe for recipe in cfg if recipe.default_steps >= steps]
        pool = at_least or cfg
        return min(pool, key=lambda recipe: abs(recipe.default_steps - steps))
    pool = plain or cfg
    if steps == 1:
        for recipe in pool:
            if recipe.kind == ModelKind.UNET:
                return recipe
    for recipe in pool:
        if recipe.kind == ModelKind.LORA and not recipe.unified and recipe.default_steps == steps:
            return recipe
    for recipe in pool:
        if recipe.unified and recipe.steps[0] <= steps <= recipe.steps[1]:
            return recipe
    return min(pool, key=lambda recipe: (abs(recipe.default_steps - steps), recipe.kind != ModelKind.LORA))


def check_architecture(recipe: Recipe, architecture: str) -> None:
    """Raise when a Hyper-SD file is for the other base architecture."""
    if recipe.architecture != architecture:
        raise ArchitectureMismatchError(
            f"{recipe.file_name} is for {Architecture(recipe.architecture).label}; the base model is "
            f"{Architecture(architecture).label}. Choose the {Architecture(architecture).label} Hyper-SD file "
            f"or an {Architecture(recipe.architecture).label} base model."
        )


def settings_warnings(
    recipe: Recipe | None,
    steps: int,
    guidance: float,
    scheduler: str,
    has_negative_prompt: bool,
) -> list[str]:
    """What the user should change, for settings that run but will not look as intended."""
    warnings: list[str] = []
    if recipe is None:
        if steps < 10:
            warnings.append(
                f"No Hyper-SD LoRA or UNet is applied, so {steps} {'step gives' if steps == 1 else 'steps give'} a "
                "noisy image; add a Hyper-SD file, or use about 25 steps."
            )
        return warnings
    low, high = recipe.steps
    if not low <= steps <= high:
        trained = f"{low}" if low == high else f"{low}–{high}"
        fix = f"set steps to {recipe.default_steps}" if low == high else f"use {low}–{high} steps"
        alternative = "" if recipe.unified else ", or use the unified 1-step LoRA (TCD), which covers 1–8 steps"
        warnings.append(
            f"{recipe.label} is trained for {trained} step{'' if trained == '1' else 's'}, not {steps}; {fix}{alternative}."
        )
    if guidance > 1.0 and not recipe.uses_guidance:
        warnings.append(
            f"Guidance {guidance:g} with {recipe.label}, which is trained without guidance, burns the "
            "image; set guidance to 0, or use a CFG LoRA (8 or 12 steps) for guidance 5–8."
        )
    elif recipe.uses_guidance and not recipe.guidance_range[0] <= guidance <= recipe.guidance_range[1]:
        lo, hi = recipe.guidance_range
        warnings.append(f"{recipe.label} is trained for guidance {lo:g}–{hi:g}, not {guidance:g}; set guidance to {recipe.guidance:g}.")
    if scheduler != recipe.scheduler:
        warnings.append(
            f"{recipe.label} is meant for the {recipe.scheduler} scheduler, not {scheduler}; "
            "set the scheduler to auto."
        )
    if has_negative_prompt and guidance <= 1.0:
        warnings.append(
            "The negative prompt has no effect without guidance (guidance 0 or 1); "
            "use a CFG LoRA with guidance 5–8 to use it."
        )
    return warnings
