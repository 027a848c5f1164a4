"""User settings kept between runs, in one JSON file under the app's config folder."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from hypersd_desktop.core.files import why_not_written, write_atomic
from hypersd_desktop.core.paths import AppPaths

log = logging.getLogger("hypersd")


@dataclass(frozen=True)
class Settings:
    """Everything the user chooses once: device, precision, memory options, folders, theme, last choices."""

    backend: str = "auto"  # an engine backend by name ("torch"), or the best one for the device
    device: str = "auto"
    dtype: str = "auto"
    worker_python: str = ""  # the interpreter that runs the worker program; empty: the app's own
    attention_slicing: bool = False
    vae_tiling: bool = False
    cpu_offload: bool = False
    models_dir: str = ""  # empty: the app's default folder
    images_dir: str = ""
    theme: str = "system"  # system, light, dark
    latest_wins: bool = False
    window_geometry: str = ""  # the main window's place, size and maximised state (Qt's saveGeometry, base64)
    previews: bool = True
    fast_decode: bool = False  # decode with TAESD instead of the full VAE (when installed)
    cuda_graphs: bool = True  # the GPU fast path: UNet and VAE decode replayed as CUDA graphs
    civitai_token: str = ""  # the person's Civitai API key, which downloads from Civitai take (models/civitai.py)
    compile_steps: bool = True  # compile the UNet and VAE decode for the GPU in the background (engine/compiled.py)
    tag_threshold: float = 0.35  # Describe: the score a tagger's tag needs to join the prompt (engine/tagger.py)
    character_threshold: float = 0.85  # … and a character's tag
    describe_exclude: str = ""  # tags Describe leaves out, commas between
    watched_folders: str = ""  # folders whose new images come into the gallery (gallery/watch.py), one a line
    describe_imports: bool = True  # pictures imported without a prompt are described for search (a tagger installed)
    last_model: str = ""
    last_hyper: str = ""
    last_steps: int = 2
    last_size: str = ""
    last_vae: str = ""  # the VAE chosen in the list (a path); empty: Automatic
    last_hires_scale: float = 1.0  # 1: Hires fix off
    last_hires_strength: float = 0.5
    last_hires_steps: int = 0  # 0: the strength's share of the first pass's steps
    last_upscaler: str = ""  # the upscaler model chosen (a path); empty: Lanczos
    last_face_detail: bool = False  # the face pass (Detail faces) on
    last_repaint_tiles: bool = False  # an enlarged picture repainted in tiles (the Upscaler row's "In tiles")
    last_tile_size: int = 0  # their side (0: the model's own size)
    last_seams_fix: str = ""  # the seams between them repainted after them (a `SeamFix`; "": left as they meet)
    last_seams_strength: float = 0.35
    last_face_strength: float = 0.4
    last_hand_detail: bool = False  # the hand pass (Detail hands) on
    last_hand_strength: float = 0.4
    export_dir: str = ""
    export_template: str = "{date}/{seed}-{prompt:40}"
    batch_dir: str = ""
    batch_prompts: str = ""  # the last batch job, so that a stopped one can be continued after a restart
    batch_job_file: str = ""
    batch_seed: int = -1
    batch_seeds_per_prompt: int = 1
    batch_template: str = "{index:4}-{seed}-{prompt:40}"
    batch_format: str = "png"
    batch_steps: int = 0  # 0: the recipe's
    batch_width: int = 0  # 0: the generation controls' size
    batch_height: int = 0
    batch_pictures: str = ""  # the folder of pictures the last batch started from ("": it made them from prompts)
    batch_picture_prompts: bool = False  # each picture's own prompts followed the job's
    batch_masks: str = ""  # the folder of masks it inpainted them through ("": none)
    batch_follow_pictures: bool = True  # its ControlNets followed each picture (its edges, depth map, pose)
    plot_x: str = "steps"  # the X/Y/Z plot dialog's last axes (engine/plot.py's names; empty: Nothing) and values
    plot_x_values: str = "1, 2, 4, 8"
    plot_y: str = ""
    plot_y_values: str = ""
    plot_z: str = ""
    plot_z_values: str = ""

    def replace(self, **changes) -> Settings:
        return replace(self, **changes)


# What the export, batch job and X/Y/Z plot dialogs remember: each writes its own to the file as it is used, so the
# window's settings, read when it started, take these from the file when they are saved (`with_dialog_choices`).
DIALOG_FIELDS = tuple(f.name for f in fields(Settings) if f.name.startswith(("export_", "batch_", "plot_")))


def with_dialog_choices(settings: Settings, paths: AppPaths | None = None) -> Settings:
    """`settings` with the dialogs' choices as the file has them now (see `DIALOG_FIELDS`)."""
    saved = load_settings(paths)
    return settings.replace(**{name: getattr(saved, name) for name in DIALOG_FIELDS})


def settings_file(paths: AppPaths | None = None) -> Path:
    return (paths or AppPaths.default()).config / "settings.json"


def load_settings(paths: AppPaths | None = None) -> Settings:
    """The saved settings; defaults for anything missing, unknown or unreadable."""
    try:
        data = json.loads(settings_file(paths).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Settings()
    known = {f.name: f.type for f in fields(Settings)}
    defaults = Settings()
    values = {}
    for key, value in data.items() if isinstance(data, dict) else ():
        if key in known and type(value) is type(getattr(defaults, key)):
            values[key] = value
    return Settings(**values)


def save_settings(settings: Settings, paths: AppPaths | None = None) -> str | None:
    """Write the settings; on a disk that will not take them (full, read-only) the reason and what to do, for the
    caller to show where the user changed something, and None once written. The app goes on either way: settings
    are remembered choices, and closing the window must not fail for them."""
    path = settings_file(paths)
    try:
        write_atomic(path, json.dumps(asdict(settings), indent=1))
    except OSError as error:
        log.warning("the settings were not saved in %s: %s", path, error)
        return f"The settings were not saved: {why_not_written(error, path.parent)}."
    return None
