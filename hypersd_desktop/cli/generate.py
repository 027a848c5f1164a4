"""`hypersd-desktop generate`: images from a prompt, saved and added to the gallery."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import queue
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hypersd_desktop.cli.common import (
    add_style_option, installed_library, parse_lora, ProgressBar, resolver, styles_named, styles_of_book, warn,
    with_windows_model,
)
from hypersd_desktop.core.codec import to_data
from hypersd_desktop.core.dynamic_prompts import Wildcards, chosen, is_dynamic, wildcards_folder
from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.progress import TransferProgress
from hypersd_desktop.core.prompt_styles import apply_styles
from hypersd_desktop.core.vocab import (
    Architecture, ControlType, Decoder, Device, DType, MapKind, ModelKind, Preprocessor, Preview, Scheduler, SeamFix,
    Tiling, architecture_label, upscaler_families, WeightsKind,
)
from hypersd_desktop.core.images import InputImages, png_data
from hypersd_desktop.engine.inspect import inspect_file, not_the_kind, union_control_types
from hypersd_desktop.engine.plot import PLOT_PARTS, PLOT_STAGE, Axis, PlotAxis, PlotSpec
from hypersd_desktop.engine.types import (
    AUTO_BACKEND, HIRES_STAGE, IP_ADAPTER_SCALE, MAX_HIRES_SCALE, TILE_MASK_BLUR, TILE_PADDING, UPSCALE_STAGE,
    ControlSpec, DetailPass, GenerationRequest, LoraSpec, SeamsFix, counts_steps, enlarged_size,
)

if TYPE_CHECKING:
    from hypersd_desktop.worker.protocol import ControlMap

CANNY = "canny"  # --preprocess canny: the edge map is made here, and the request names it
# --preprocess depth and pose: the map is made (here or in the runtime's worker) and the request names it
DEPTH, POSE = MapKind.DEPTH.value, MapKind.POSE.value


def parse_timesteps(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"timesteps must be integers separated by commas, not {text!r}") from None


def _colon_parts(text: str) -> list[str]:
    """`text` split at its colons; a Windows drive letter (C:\\…) stays part of its path."""
    parts: list[str] = []
    for part in text.split(":"):
        if parts and len(parts[-1]) == 1 and parts[-1].isalpha() and part[:1] in ("\\", "/"):
            parts[-1] += ":" + part
        else:
            parts.append(part)
    return parts


def _scale_of(parts: list[str], text: str, default: float) -> float:
    """The SCALE after MODEL:IMAGE in `parts` (taken off them), else `default`."""
    if len(parts) != 3:
        return default
    try:
        return float(parts.pop())
    except ValueError:
        raise argparse.ArgumentTypeError(f"the scale in {text!r} is not a number") from None


def parse_ip_adapter(text: str) -> tuple[str, str, float]:
    """MODEL:IMAGE[:SCALE] (the scale 0.6 by default)."""
    parts = _colon_parts(text)
    scale = _scale_of(parts, text, IP_ADAPTER_SCALE)
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(f"an IP-Adapter is MODEL:IMAGE or MODEL:IMAGE:SCALE, not {text!r}")
    return parts[0], parts[1], scale


def parse_axis(text: str) -> PlotAxis:
    """`AXIS:VALUES` (`steps:1,2,4,8`, `"CFG Scale:1-3 (+0.5)"`, `prompt:cat,dog`) as a plot axis, its values
    checked."""
    name, colon, values = text.partition(":")
    if not colon:
        raise argparse.ArgumentTypeError(f"{text!r} is not AXIS:VALUES (for example steps:1,2,4,8); the axes are "
                                         f"{', '.join(Axis.values())}")
    try:
        axis = PlotAxis(Axis.named(name), values.strip())
        axis.parsed()
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return axis


def parse_outpaint(text: str) -> tuple[int, int, int, int]:
    """LEFT,TOP,RIGHT,BOTTOM: pixels to extend the init image by on each side."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 4 or not all(part.isdigit() for part in parts) or not any(int(part) for part in parts):
        raise argparse.ArgumentTypeError(f"--outpaint is four whole numbers of pixels, LEFT,TOP,RIGHT,BOTTOM (such as "
                                         f"0,0,256,0), not all 0; not {text!r}")
    left, top, right, bottom = (int(part) for part in parts)
    return left, top, right, bottom


def parse_control(text: str) -> tuple[str, str | None, float, str | None]:
    """MODEL:IMAGE[:SCALE[:TYPE]]; a Windows drive letter (C:\\…) stays part of its path. IMAGE may be left out
    (MODEL, MODEL::SCALE) for --preprocess inpaint, which takes the init image: None then."""
    parts = _colon_parts(text)
    kind = parts.pop() if len(parts) == 4 else None
    if kind is not None and kind not in ControlType.values():
        raise argparse.ArgumentTypeError(f"the control type in {text!r} is none of {', '.join(ControlType.values())}")
    scale = _scale_of(parts, text, 1.0)
    if len(parts) == 1:
        parts.append("")
    if len(parts) != 2 or not parts[0]:
        raise argparse.ArgumentTypeError(f"a control is MODEL:IMAGE, MODEL:IMAGE:SCALE or MODEL:IMAGE:SCALE:TYPE, "
                                         f"not {text!r}")
    return parts[0], parts[1] or None, scale, kind


def add_parser(commands) -> None:
    generate = commands.add_parser("generate", help="generate images from a prompt")
    generate.add_argument("prompt_given", nargs="?", metavar="PROMPT", help="what to make (or --prompt)")
    generate.add_argument("--model",
                          help="base model: a diffusers folder, a .safetensors checkpoint, or an installed model's name "
                               "(default: the window's, with its Hyper-SD file unless --lora or --unet names one)")
    generate.add_argument("--prompt")
    generate.add_argument("--negative", default="", help="negative prompt (used only with guidance above 1)")
    add_style_option(generate)
    generate.add_argument("--lora", action="append", default=[], type=parse_lora, metavar="PATH[:WEIGHT]",
                          help="a LoRA file or installed LoRA's name, repeatable; a Hyper-SD file name sets the recipe")
    generate.add_argument("--unet", help="a full UNet replacing the base model's (the Hyper-SDXL 1-step UNet)")
    generate.add_argument("--vae", help="a VAE (file, folder or installed name) replacing the base model's; without "
                          "it, one beside a checkpoint named <checkpoint>.vae.safetensors, the installed fp16-safe "
                          "SDXL VAE for SDXL, or for a checkpoint without a VAE the installed one for its architecture")
    generate.add_argument("--config", help="diffusers config folder for a single-file checkpoint (default: bundled)")
    generate.add_argument("--recipe", help="force a Hyper-SD recipe by name (default: from the LoRA/UNet file names)")
    generate.add_argument("--steps", type=int)
    generate.add_argument("--guidance", type=float)
    generate.add_argument("--eta", type=float, help="TCD eta: lower keeps more detail at more steps (default 1.0)")
    generate.add_argument("--embedding", action="append", default=[], metavar="PATH",
                          help="a textual-inversion embedding, read where its file name is in a prompt (repeatable; "
                               "installed embeddings a prompt names apply by themselves)")
    generate.add_argument("--clip-skip", type=int, default=1, metavar="N",
                          help="SD1.5: read the text encoder N layers from its end, as A1111 counts (default 1)")
    generate.add_argument("--scheduler", choices=Scheduler.values(), default="auto")
    generate.add_argument("--timesteps", type=parse_timesteps, metavar="T,...", help="explicit timesteps (TCD, LCM)")
    generate.add_argument("--seed", type=int, default=None, help="seed of the first image (default: random)")
    generate.add_argument("--width", type=int)
    generate.add_argument("--height", type=int)
    generate.add_argument("--batch", type=int, default=1, help="images per run; image k uses seed + k (with a "
                          "variation: the seed, and variation seed + k)")
    generate.add_argument("--variation-strength", type=float, default=0.0, metavar="S",
                          help="vary the seed's image by a second seed's noise, S of the way (0 to 1; about 0.1–0.3 "
                               "makes close variations), as A1111's variation seed")
    generate.add_argument("--variation-seed", type=int, metavar="N",
                          help="the seed the image is varied by (default: random)")
    generate.add_argument("--tiling", choices=Tiling.values(), default=Tiling.OFF.value,
                          help="a seamless image, whose copies tile without a seam: both ways (A1111's Tiling), x "
                               "(left to right) or y (top to bottom); PyTorch backend")
    generate.add_argument("--backend", default=AUTO_BACKEND,
                          help="engine backend: torch or onnx (ONNX Runtime; exports each model + LoRA set once); "
                               "default: the best for the device")
    generate.add_argument("--device", choices=Device.values(), default="auto")
    generate.add_argument("--dtype", choices=DType.values(), default="auto")
    generate.add_argument("--taesd", help="TAESD (a folder, a taesd_decoder.safetensors file or an installed name): "
                                           "fast previews, and with --fast-decode the final decode")
    generate.add_argument("--fast-decode", action="store_true",
                          help="decode with TAESD instead of the full VAE (the installed TAESD or TAESDXL for the "
                               "model, unless --taesd names one)")
    generate.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                          help="run each step eagerly instead of replaying CUDA graphs (NVIDIA GPUs)")
    generate.add_argument("--init-image", type=Path, help="start from this image (image-to-image); its size (sides "
                          "cut to multiples of 8; a photo far larger than the model's size scaled down to it) is the "
                          "output's unless --width/--height say otherwise, when it is cut to that shape and scaled")
    generate.add_argument("--strength", type=float,
                          help="how much of the init image is repainted, 0-1 (default 0.75, 1 with --outpaint); at 4 "
                               "steps 0.5 runs 2")
    generate.add_argument("--outpaint", type=parse_outpaint, metavar="LEFT,TOP,RIGHT,BOTTOM",
                          help="with --init-image: extend the picture by these many pixels on each side and paint the "
                               "new parts (outpainting; with --mask, that is kept too)")
    generate.add_argument("--enlarge", type=float, metavar="SCALE",
                          help="with --init-image: make the result SCALE times the picture's size (above 1, at most "
                               "4), the picture enlarged (Lanczos, or --upscaler) and repainted at --strength: an "
                               "upscale (about 0.5 keeps the picture and adds detail)")
    generate.add_argument("--mask", type=Path, help="inpaint: a grayscale image of the init image's size, white "
                                                    "repainted and black kept; or strokes on a transparent layer "
                                                    "(what is painted is repainted)")
    generate.add_argument("--mask-blur", type=int, default=4, help="pixels of blur on the mask's edge (default 4)")
    generate.add_argument("--hires", type=float, metavar="SCALE",
                          help="Hires fix (A1111's): make each image again SCALE times larger (above 1, at most 4: "
                               "1.5, 2) from itself enlarged (Lanczos, or --upscaler), for detail at sizes the model "
                               "was not trained at")
    generate.add_argument("--upscaler", metavar="FILE|NAME",
                          help="with --hires or --enlarge: the upscaler model that enlarges the picture before it is "
                               f"repainted, an {upscaler_families()} file in safetensors (4x-UltraSharp, "
                               "RealESRGAN_x4plus …) or an installed one's name; default: Lanczos")
    generate.add_argument("--tiles", type=int, nargs="?", const=0, metavar="SIZE",
                          help="with --hires or --enlarge: repaint the enlarged picture a tile at a time, as the "
                               "Ultimate SD Upscale extension does, tiles of at most SIZE pixels a side (default: the "
                               "model's own, 512 for SD1.5 and 1024 for SDXL), each made at its own size with 32 "
                               "pixels of the picture around it: a large upscale keeps one subject, in one tile's "
                               "memory")
    generate.add_argument("--tile-padding", type=int, metavar="PIXELS",
                          help="with --tiles: how many pixels of the picture around each tile the model sees with "
                               f"it (the extension's \"padding\"; default {TILE_PADDING})")
    generate.add_argument("--tile-mask-blur", type=int, metavar="PIXELS",
                          help="with --tiles: the blur of the edge each tile is laid back in along (the extension's "
                               f"\"mask blur\"; default {TILE_MASK_BLUR})")
    generate.add_argument("--seams-fix", choices=SeamFix.values(), metavar="HOW",
                          help="with --tiles: once every tile is made, repaint the seams between them as the Ultimate "
                               "SD Upscale extension's Seams fix does, through a mask that fades away from each seam: "
                               "band (a band across each seam), half-tile (a tile's size centred on each seam) or "
                               "half-tile+corners (those and one on each point where four tiles meet)")
    seams = SeamsFix()
    for option, kind, default, says in (
            ("strength", float, seams.strength, "how much of each seam's area is repainted, 0-1"),
            ("width", int, seams.width, "the band's width across each seam, in pixels (band)"),
            ("mask-blur", int, seams.mask_blur, "the blur of a half tile's mask, in pixels (half-tile)"),
            ("padding", int, seams.padding, "pixels of the picture around each seam's area that the model sees")):
        generate.add_argument(f"--seams-{option}", type=kind, default=default,
                              help=f"with --seams-fix: {says} (default {default:g})")
    generate.add_argument("--hires-strength", type=float, default=0.5,
                          help="how much of the enlarged image the Hires fix repaints, 0-1 (default 0.5)")
    generate.add_argument("--hires-steps", type=int, metavar="STEPS",
                          help="the steps the Hires fix's second pass runs, as A1111's \"Hires steps\" (the last "
                               "ones of a schedule long enough that --hires-strength of it is STEPS); default: "
                               "--hires-strength of the first pass's steps, on its timesteps (a Hyper-SD file's)")
    generate.add_argument("--hires-prompt", metavar="TEXT", help="the Hires fix's second pass's own prompt, as "
                          "A1111's \"Hires prompt\" (default: --prompt)")
    generate.add_argument("--hires-negative", metavar="TEXT", help="its own negative prompt (default: --negative)")
    generate.add_argument("--hires-cfg", type=float, metavar="SCALE", help="its own guidance, as Forge's \"Hires CFG "
                          "Scale\" (default: --guidance)")
    generate.add_argument("--only-masked", type=int, nargs="?", const=32, metavar="PADDING",
                          help="inpaint only the masked area, with PADDING pixels around it (default 32), made at "
                               "about the model's size (or --width × --height) and laid back into the whole picture, "
                               "which keeps its size (A1111's \"Only masked\")")
    for part, parts, points, first in (("face", "faces", "eyes and nose", "once the image is made"),
                                       ("hand", "hands", "wrist and elbow", "once the image is made (and its faces)")):
        generate.add_argument(f"--detail-{parts}", type=float, nargs="?", const=0.4, metavar="STRENGTH",
                              help=f"a {part} pass, as ADetailer's: {first}, each {part} in it is made again on its "
                                   f"own and laid back, STRENGTH of the schedule repainting it (default 0.4); the "
                                   f"{parts} are found by the installed pose model and person detector (ViTPose, "
                                   "RT-DETR)")
        generate.add_argument(f"--{part}-prompt", metavar="TEXT",
                              help=f"the {part} pass's own prompt (default: --prompt)")
        generate.add_argument(f"--{part}-negative", metavar="TEXT",
                              help="its own negative prompt (default: --negative)")
        generate.add_argument(f"--{part}-padding", type=int, metavar="PIXELS",
                              help=f"how much of the image around a {part} the {part} pass sees (default 32)")
        generate.add_argument(f"--{part}-confidence", type=float, metavar="SCORE",
                              help=f"how sure the pose model must be of a {part}'s {points}, 0-1 (default 0.3)")
        generate.add_argument(f"--{part}-largest", type=int, metavar="N",
                              help=f"repaint only the N largest {parts} (ADetailer's \"mask only top k largest\"; "
                                   "default: all)")
        generate.add_argument(f"--{part}-steps", type=int, metavar="STEPS",
                              help=f"the {part} pass's own steps (ADetailer's \"use separate steps\"; default: the "
                                   "image's)")
        generate.add_argument(f"--{part}-cfg", type=float, metavar="SCALE",
                              help=f"the {part} pass's own guidance (ADetailer's \"use separate CFG scale\"; "
                                   "default: the image's)")
        generate.add_argument(f"--{part}-size", type=pass_size, metavar="WxH",
                              help=f"the size each {part} is made at (ADetailer's \"inpaint width\" and \"height\"; "
                                   "default: about the image's)")
        generate.add_argument(f"--{part}-dilate", type=int, metavar="PIXELS",
                              help=f"grow each {part}'s mask by a square PIXELS across, or shrink it by one below 0 "
                                   "(ADetailer's \"dilate erode\"; default 0)")
        generate.add_argument(f"--{part}-offset", type=int_pair, metavar="X,Y",
                              help=f"move each {part}'s mask X pixels right and Y up (ADetailer's \"x offset\" and "
                                   f"\"y offset\"; to the left, write it --{part}-offset=-4,0)")
        generate.add_argument(f"--{part}-ratios", type=ratio_pair, metavar="MIN,MAX",
                              help=f"repaint only the {parts} whose box is MIN to MAX of the image's area "
                                   "(ADetailer's \"mask min\" and \"max area ratio\"; default 0,1)")
        generate.add_argument(f"--{part}-merge", choices=tuple(MERGE_WORDS),
                              help=f"merge: repaint all the {parts} in one pass; invert: repaint all the rest of the "
                                   "image in one (ADetailer's \"mask merge mode\"; default none)")
    generate.add_argument("--detail-only", action="store_true",
                          help="make only the faces and hands of the --init-image again (--detail-faces, "
                               "--detail-hands), nothing else of it (ADetailer's \"skip img2img\")")
    generate.add_argument("--control", action="append", default=[], type=parse_control,
                          metavar="MODEL:IMAGE[:SCALE[:TYPE]]",
                          help="a ControlNet (folder, file or installed name) and the image it follows (edges, a "
                               "scribble: white on black), with a scale (default 1.0); repeatable. A ControlNet "
                               "Union model is told what the image is by TYPE: " + ", ".join(ControlType.values())
                               + " (canny and scribble are known from --preprocess)")
    generate.add_argument("--ip-adapter", action="append", default=[], type=parse_ip_adapter,
                          metavar="MODEL:IMAGE[:SCALE]",
                          help="an IP-Adapter (file or installed name) and the picture it steers the image by, as a "
                               f"prompt does by words, with a scale (default {IP_ADAPTER_SCALE:g}; 1 follows the "
                               "picture most); repeatable")
    generate.add_argument("--image-encoder", metavar="ENCODER",
                          help="the CLIP image encoder the IP-Adapters read their pictures with (a folder, a file or "
                               "an installed name; default: the installed one each adapter was trained with)")
    generate.add_argument("--preprocess", choices=[*Preprocessor.values(), CANNY, DEPTH, POSE],
                          default=Preprocessor.NONE.value,
                          help="make the --control images into what the ControlNet sees: canny finds a photo's edges "
                               "(OpenCV, thresholds 100/200 as the model card; the request names the edge map); "
                               "depth makes a photo's depth map with the installed depth model (Depth Anything; the "
                               "request names the map); pose draws the people in a photo as OpenPose's skeleton "
                               "with the installed pose model and person detector (ViTPose, RT-DETR; the "
                               "request names the map); scribble turns a drawing (dark strokes on light, or light on "
                               "dark) into white strokes on black; inpaint gives an inpainting ControlNet "
                               "(control_v11p_sd15_inpaint, or a ControlNet Union ProMax model) the --init-image with "
                               "the --mask's part left open (--control MODEL or MODEL::SCALE: no image to name)")
    generate.add_argument("--pose-model", help="the pose model for --preprocess pose, --detail-faces and "
                                               "--detail-hands (a ViTPose folder or an installed name; default: the "
                                               "installed one)")
    generate.add_argument("--person-detector", help="the person detector for --preprocess pose, --detail-faces and "
                                                    "--detail-hands (an RT-DETR folder or an installed name; default: "
                                                    "the installed one)")
    generate.add_argument("--depth-model", help="the depth model for --preprocess depth (a folder or an installed "
                                                "name; default: the installed one)")
    generate.add_argument("--out", type=Path, help="output folder, or a .png file (several images: numbered -1, "
                                                   "-2 …; default: the app's images folder)")
    generate.add_argument("--x-axis", type=parse_axis, metavar="AXIS:VALUES",
                          help="an X/Y/Z plot, as A1111's: the image made again with AXIS at each of VALUES "
                               "(1,2,4,8; 1-8 (+2); 1-8 [4]; a seed -1 is random), then a grid of them with labels. "
                               f"AXIS: {', '.join(Axis.values())} (prompt: its first value replaced by each)")
    generate.add_argument("--y-axis", type=parse_axis, metavar="AXIS:VALUES", help="the plot's rows (with --x-axis)")
    generate.add_argument("--z-axis", type=parse_axis, metavar="AXIS:VALUES",
                          help="a grid of the plot for each of VALUES, side by side (with --x-axis)")
    generate.add_argument("--json", action="store_true", help="print one JSON object per image")
    generate.add_argument("--no-gallery", action="store_true", help="do not add the images to the gallery")



def control_image(inputs: InputImages, path: Path, edges_at: tuple[int, int] | None) -> str:
    """The digest of a --control image in the input store: the picture itself, or with `edges_at` (the run's
    size) its edge map found at that size (the picture is then only read)."""
    what = f"The control image {path}"
    if edges_at is None:
        return inputs.add_file(path, what)
    from hypersd_desktop.engine.inputs import edge_map

    edges = edge_map(inputs.open(inputs.add_file(path, what, keep=False)), edges_at)
    return inputs.add(png_data(edges), f"The edge map of {path}")  # the bytes the window's edge map has


def outpaint_inputs(inputs: InputImages, init: str | None, mask: str | None,
                    pads: tuple[int, int, int, int]) -> tuple[str, str]:
    """The init image extended by `pads` (`preprocess.outpainted`) and the mask of its new parts, with the --mask
    kept, as input images."""
    from hypersd_desktop.engine.inputs import mask_of
    from hypersd_desktop.engine.preprocess import MAX_OUTPAINTED_SIDE, outpainted

    if init is None:
        raise InputError("--outpaint needs --init-image: the picture to extend.")
    picture = inputs.open(init, mode="RGB")
    given = mask_of(inputs.open(mask, mode="RGBA")) if mask is not None else None
    if given is not None and given.size != picture.size:
        raise InputError(f"The mask is {given.width} × {given.height} and the init image {picture.width} × "
                         f"{picture.height}; the mask must be a grayscale image of the same size.")
    if max(picture.width + pads[0] + pads[2], picture.height + pads[1] + pads[3]) > MAX_OUTPAINTED_SIDE:
        raise InputError(f"--outpaint would make the picture over {MAX_OUTPAINTED_SIDE} pixels on a side; extend it "
                         "less.")
    extended, painted = outpainted(picture, given, pads)
    return (inputs.add(png_data(extended, quick=True), "The outpainted picture"),
            inputs.add(png_data(painted), "The outpainting mask"))


def ip_adapters_of(args: argparse.Namespace, inputs: InputImages, resolve: Callable[[str], str]) -> tuple:
    """The --ip-adapter options as the request names them, each with the --image-encoder or the installed encoder
    its adapter reads with."""
    from hypersd_desktop.engine.ip_adapter_files import no_encoder
    from hypersd_desktop.engine.types import IPAdapterSpec

    if args.image_encoder is not None and not args.ip_adapter:
        raise InputError("--image-encoder is the encoder of an IP-Adapter's picture; add --ip-adapter MODEL:IMAGE, or "
                         "leave it out.")
    specs = []
    for model, image, scale in args.ip_adapter:
        path = resolve(model)
        info = inspect_file(path)
        if info.kind != WeightsKind.IP_ADAPTER:
            raise InputError(not_the_kind(Path(path), info, "an IP-Adapter"))
        if args.image_encoder is not None:
            encoder = resolve(args.image_encoder)
        else:
            with installed_library() as library:
                found = library.image_encoder_for(path) if library is not None else None
            if found is None:
                from hypersd_desktop.engine.ip_adapter_files import adapter_need

                raise InputError(no_encoder(path, adapter_need(path), "name one with --image-encoder"))
            encoder = found.path
        specs.append(IPAdapterSpec(path, encoder, inputs.add_file(Path(image), f"The --ip-adapter picture {image}"),
                                   scale))
    return tuple(specs)


def run_size(args: argparse.Namespace, base_model: str, inputs: InputImages, init: str | None) -> tuple[int, int]:
    """The size the run will have (the engine's `open_inputs` of the request without its ControlNets)."""
    from hypersd_desktop.engine.inputs import open_inputs
    from hypersd_desktop.engine.inspect import base_architecture

    side = Architecture(base_architecture(base_model)).default_size
    sized = GenerationRequest(prompt=args.prompt, base_model=base_model, width=args.width, height=args.height,
                              init_image=init)
    if init is None:
        return sized.width or side, sized.height or side
    run = open_inputs(sized, inputs, args.width or side, args.height or side)
    return run.width, run.height


def enlarge_to(args: argparse.Namespace, inputs: InputImages, init: str | None) -> tuple[int, int]:
    """The size `--enlarge` asks for: the init image's own size times the scale (`enlarged_size`), as the window's
    Enlarge makes it."""
    if init is None:
        raise InputError("--enlarge needs --init-image: the picture to make larger (--hires enlarges an image made "
                         "from the prompt).")
    if args.width is not None or args.height is not None:
        raise InputError("--enlarge sets the size from the init image; leave out --width and --height, or give "
                         "only them.")
    if args.only_masked is not None:
        raise InputError("--only-masked keeps the picture's size; leave out --enlarge.")
    if not 1.0 < args.enlarge <= MAX_HIRES_SCALE:
        raise InputError(f"--enlarge must be above 1 and at most {MAX_HIRES_SCALE:g}; got {args.enlarge:g}.")
    return enlarged_size(inputs.open(init).size, args.enlarge)


def request_from_args(args: argparse.Namespace) -> GenerationRequest:
    import secrets

    resolve = resolver()
    args.prompt = the_prompt(args)
    if args.model is None:
        named = args.unet is not None or args.recipe is not None
        args.model, args.lora, unet = with_windows_model(args.lora, named=named, resolve=resolve)
        args.unet = args.unet or unet
    if args.unet is not None and not Path(args.unet).exists():
        raise InputError(f"--unet {args.unet} does not exist; check the path.")
    base_model = resolve(args.model)
    taesd = resolve(args.taesd) if args.taesd else installed_taesd(base_model) if args.fast_decode else None
    preview = Preview.TAESD if taesd else Preview.NONE
    inputs = InputImages(AppPaths.default().inputs)
    if args.mask is not None and args.init_image is None:
        raise InputError("--mask needs --init-image: the image to paint into.")
    init = inputs.add_file(args.init_image, "The --init-image") if args.init_image else None
    mask = inputs.add_file(args.mask, "The --mask") if args.mask else None
    if args.outpaint is not None:
        init, mask = outpaint_inputs(inputs, init, mask, args.outpaint)
    if args.strength is None:  # outpainting's new parts hold only the edge's colours drawn out: from noise
        args.strength = 1.0 if args.outpaint is not None else 0.75
    if args.enlarge is not None:
        args.width, args.height = enlarge_to(args, inputs, init)
    canny = args.preprocess == CANNY
    edges_at = run_size(args, base_model, inputs, init) if canny and args.control else None
    made_here = {CANNY: ControlType.CANNY, DEPTH: ControlType.DEPTH,  # the request names a map
                 POSE: ControlType.OPENPOSE}.get(args.preprocess)
    detailed = args.detail_faces is not None or args.detail_hands is not None
    for option, preprocess in (("depth_model", DEPTH), ("pose_model", POSE), ("person_detector", POSE)):
        if getattr(args, option) is not None and args.preprocess != preprocess and (preprocess != POSE or
                                                                                    not detailed):
            raise InputError(f"--{option.replace('_', '-')} is for --preprocess {preprocess}"
                             + (", --detail-faces and --detail-hands." if preprocess == POSE else "."))
    for part in ("face", "hand"):
        for option in ("prompt", "negative", "padding", "confidence", "largest", "steps", "cfg", "size", "dilate",
                       "offset", "ratios", "merge"):
            if getattr(args, f"{part}_{option}") is not None and getattr(args, f"detail_{part}s") is None:
                raise InputError(f"--{part}-{option} is the {part} pass's own; add --detail-{part}s [STRENGTH].")
    if args.variation_seed is not None and not args.variation_strength:
        raise InputError("--variation-seed is the seed an image is varied by; add --variation-strength S (0.1–0.3 "
                         "makes close variations).")
    controls = []
    inpaint = args.preprocess == Preprocessor.INPAINT
    for model, image, scale, kind in args.control:
        path = resolve(model)
        if kind is None and made_here and union_control_types(path):
            kind = made_here  # a Union model is told what the map is
        if image is None and not inpaint:
            raise InputError(f"--control {model} names no image for the ControlNet to follow: write MODEL:IMAGE "
                             "(only --preprocess inpaint takes the init image by itself).")
        digest = init if image is None else control_image(inputs, Path(image), edges_at)
        controls.append(ControlSpec(path, digest, scale, control_type=kind,
                                    preprocessor=Preprocessor.NONE if made_here else Preprocessor(args.preprocess)))
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    typed_negative = args.negative
    styles = styles_named(args.style)  # their words added, as the window adds them (and A1111)
    args.prompt, args.negative = apply_styles(args.prompt, args.negative, styles)
    if args.hires_prompt:
        args.hires_prompt = apply_styles(args.hires_prompt, "", styles)[0]
    if args.hires_negative:
        args.hires_negative = apply_styles("", args.hires_negative, styles)[1]
    faces, hands = (detail_pass_of(args, part) for part in ("face", "hand"))
    # a prompt with choices ({a|b}, __wildcard__) makes them by the seed: the run's images share the prompt
    wildcards = Wildcards(wildcards_folder(AppPaths.default()))
    templates = [text if is_dynamic(text, wildcards) else None for text in (args.prompt, args.negative)]
    args.prompt, args.negative = (chosen(text, seed, wildcards) for text in (args.prompt, args.negative))
    request = GenerationRequest(
        prompt=args.prompt,
        negative_prompt=args.negative,
        base_model=base_model,
        base_config=args.config,
        unet=str(Path(args.unet).resolve()) if args.unet else None,
        vae=resolve(args.vae) if args.vae else automatic_vae(base_model),
        loras=tuple(LoraSpec(resolve(spec.path), spec.weight) for spec in args.lora),
        embeddings=embeddings_of(args, base_model, resolve),
        recipe=args.recipe,
        steps=args.steps,
        guidance=args.guidance,
        eta=args.eta,
        clip_skip=args.clip_skip,
        scheduler=args.scheduler,
        timesteps=args.timesteps,
        seed=seed,
        variation_seed=None if not args.variation_strength else args.variation_seed if args.variation_seed is not None
        else secrets.randbelow(2**32),
        variation_strength=args.variation_strength,
        tiling=args.tiling,
        prompt_template=templates[0],
        negative_template=templates[1],
        width=args.width,
        height=args.height,
        batch_size=args.batch,
        backend=args.backend,
        device=args.device,
        dtype=args.dtype,
        preview=preview,
        decoder=Decoder.TAESD if args.fast_decode else Decoder.VAE,
        taesd=taesd,
        cuda_graphs=args.cuda_graphs,
        compile=False,  # a background compile outlives one command's images; the app's worker does it
        init_image=init,
        strength=args.strength,
        mask_image=mask,
        mask_blur=args.mask_blur,
        masked_padding=args.only_masked,
        controls=tuple(controls),
        ip_adapters=ip_adapters_of(args, inputs, resolve),
        hires_scale=args.hires,
        hires_strength=args.hires_strength,
        hires_steps=args.hires_steps, hires_prompt=args.hires_prompt, hires_negative_prompt=args.hires_negative,
        hires_guidance=args.hires_cfg,
        upscaler=upscaler_of(args, resolve),
        face_detail=faces, hand_detail=hands,
        repaint_tile=tiles_of(args, base_model), **tile_surround_of(args), seams_fix=seams_fix_of(args),
        detail_only=args.detail_only,
    )
    from hypersd_desktop.engine.planning import reads_negative
    from hypersd_desktop.worker.batch import with_tagged_loras

    request = with_tagged_loras(request, installed_tagged_loras)  # `<lora:NAME:WEIGHT>` in the prompt, as A1111 applies it
    if styles and args.negative != typed_negative and not reads_negative(request):  # none read: none added
        request = request.replace(negative_prompt=chosen(typed_negative, seed, wildcards),
                                  negative_template=typed_negative if is_dynamic(typed_negative, wildcards) else None)
    from hypersd_desktop.engine.inputs import open_inputs  # numpy: only for a request that generates

    open_inputs(request, inputs, request.width or 0, request.height or 0)  # sizes and the mask, before torch loads
    return request


def detail_pass_of(args: argparse.Namespace, part: str) -> DetailPass | None:
    """The face pass --detail-faces asks for (`part` "face"), or the hand pass of --detail-hands ("hand"), with the
    pose models --pose-model and --person-detector name (else the installed ones)."""
    strength = getattr(args, f"detail_{part}s")
    if strength is None:
        return None
    models = (map_model(args, option, f"--detail-{part}s") for option in ("pose_model", "person_detector"))
    given = {name: value for name in ("padding", "confidence", "largest", "steps")
             if (value := getattr(args, f"{part}_{name}")) is not None}  # else the pass's own defaults
    size = getattr(args, f"{part}_size")
    given.update({"guidance": getattr(args, f"{part}_cfg")} if getattr(args, f"{part}_cfg") is not None else {},
                 **({"width": size[0], "height": size[1]} if size else {}))
    shaped = {"dilate_erode": getattr(args, f"{part}_dilate"), "merge": MERGE_WORDS.get(getattr(args, f"{part}_merge"))}
    shaped.update(zip(("x_offset", "y_offset"), getattr(args, f"{part}_offset") or ()))
    shaped.update(zip(("min_ratio", "max_ratio"), getattr(args, f"{part}_ratios") or ()))
    given.update({name: value for name, value in shaped.items() if value is not None})
    return DetailPass(*models, strength=strength, prompt=getattr(args, f"{part}_prompt") or "",
                      negative_prompt=getattr(args, f"{part}_negative") or "", **given)


MERGE_WORDS = {"none": "none", "merge": "merge", "invert": "merge and invert"}  # --face-merge's: the request's


def int_pair(text: str) -> tuple[int, int]:
    """--face-offset and --hand-offset: "X,Y" ("0,-8")."""
    try:
        x, y = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not two whole numbers: give them as X,Y, such as 0,8") from None
    return x, y


def ratio_pair(text: str) -> tuple[float, float]:
    """--face-ratios and --hand-ratios: "MIN,MAX" ("0.01,0.5")."""
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not two numbers: give them as MIN,MAX, such as 0.01,0.5"
                                         ) from None
    return low, high


def pass_size(text: str) -> tuple[int, int]:
    """--face-size and --hand-size: "WxH" ("1024x1024")."""
    try:
        width, height = (int(side) for side in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: give it as WxH, such as 1024x1024") from None
    return width, height


def tiles_of(args: argparse.Namespace, base_model: str) -> int | None:
    """The tiles --tiles repaints an enlarged picture in: SIZE, else the model's own side."""
    if args.tiles is None:
        return None
    if args.hires is None and args.init_image is None:
        raise InputError("--tiles repaints an enlarged picture a tile at a time: it goes with --hires, or with "
                         "--init-image made larger (--enlarge, or --width and --height).")
    if args.tiles:
        return args.tiles
    from hypersd_desktop.engine.inspect import base_architecture

    return Architecture(base_architecture(base_model)).default_size


def tile_surround_of(args: argparse.Namespace) -> dict[str, int]:
    """The tiles' padding and mask blur --tile-padding and --tile-mask-blur ask for (those given)."""
    given = {name: value for name, value in (("tile_padding", args.tile_padding),
                                             ("tile_mask_blur", args.tile_mask_blur)) if value is not None}
    if given and args.tiles is None:
        raise InputError(f"--{next(iter(given)).replace('_', '-')} is for the tiles of --tiles; add --tiles, or leave "
                         "it out.")
    return given


def seams_fix_of(args: argparse.Namespace) -> SeamsFix | None:
    """The seams fix --seams-fix asks for, with its --seams-… settings."""
    if args.seams_fix is None:
        return None
    if args.tiles is None:
        raise InputError("--seams-fix repaints the seams between the tiles of --tiles; add --tiles, or leave "
                         "--seams-fix out.")
    return SeamsFix(args.seams_fix, args.seams_strength, args.seams_width, args.seams_mask_blur, args.seams_padding)


def upscaler_of(args: argparse.Namespace, resolve) -> str | None:
    """The upscaler file --upscaler names (a path or an installed name), checked to be one the app runs."""
    if args.upscaler is None:
        return None
    if args.hires is None and args.init_image is None:
        raise InputError("--upscaler enlarges a picture before it is repainted: it goes with --hires, or with "
                         "--init-image made larger (--enlarge, or --width and --height).")
    return checked_upscaler(Path(resolve(args.upscaler)))


def checked_upscaler(path: Path) -> str:
    """`path`, an upscaler file the app runs; `InputError` saying what it is instead (a pickle, a LoRA…)."""
    info = inspect_file(path)  # refuses a pickle, a damaged file, a folder
    if info.kind != WeightsKind.UPSCALER:
        raise InputError(not_the_kind(path, info, f"an upscaler ({upscaler_families()}, ×2 or larger)"))
    return str(path)


def the_prompt(args: argparse.Namespace) -> str:
    """The prompt, typed after `generate` or given with --prompt."""
    if args.prompt_given is not None and args.prompt is not None:
        raise InputError("Give the prompt once: after `generate`, or with --prompt.")
    prompt = args.prompt if args.prompt is not None else args.prompt_given
    if prompt is None:
        raise InputError('Say what to make: hypersd-desktop generate "a lighthouse at dusk".')
    return prompt


def automatic_vae(base_model: str) -> str | None:
    """The VAE the window's "Automatic" picks for the model (`ModelLibrary.vae_for`), where there is a library."""
    from hypersd_desktop.models.library import vae_beside

    with installed_library() as library:
        if library is not None:
            return library.vae_for(base_model)
    beside = vae_beside(Path(base_model))  # no library yet: only the file beside the checkpoint
    return str(beside) if beside is not None else None


def installed_taesd(base_model: str) -> str:
    """The installed TAESD for the model's architecture, which --fast-decode uses when --taesd names none."""
    from hypersd_desktop.engine.inspect import base_architecture

    architecture = base_architecture(base_model)
    with installed_library() as library:
        found = library.taesd_for(architecture) if library is not None else None
    if found is None:
        name = "taesdxl" if architecture == Architecture.SDXL else "taesd"
        raise InputError(f"--fast-decode needs {name.upper()} for this {architecture_label(architecture)} model: "
                         f"install it with `hypersd-desktop models download {name}`, or name a file with --taesd.")
    return found


def embeddings_of(args: argparse.Namespace, base_model: str, resolve) -> tuple[str, ...]:
    """The embeddings given with --embedding, and the installed ones for the base model that the prompts name."""
    given = [resolve(path) for path in args.embedding]
    with installed_library() as library:
        if library is not None:
            from hypersd_desktop.engine.inspect import base_architecture
            from hypersd_desktop.models.registry import named_embeddings

            installed = library.registry.list(ModelKind.EMBEDDING, base_architecture(base_model))
            given += named_embeddings(installed, args.prompt, args.negative, args.hires_prompt or "",
                                      args.hires_negative or "", *(getattr(args, f"{part}_{which}") or ""
                                                                   for part in ("face", "hand")
                                                                   for which in ("prompt", "negative")))
    return tuple(dict.fromkeys(given))


def installed_tagged_loras(base_model: str, prompt: str, listed: list[str]) -> list[tuple[str, float]]:
    """The installed LoRAs the prompt's `<lora:NAME:WEIGHT>` tags name (`ModelLibrary.loras_tagged`)."""
    with installed_library() as library:
        return library.loras_tagged(base_model, prompt, listed) if library is not None else []


# --preprocess: its option naming a model, what the model is, its kind when installed, the check of a folder, what
# the app reads, the catalog entry to install
MAP_MODELS = {
    "depth_model": ("depth model", ModelKind.DEPTH, "is_depth_model", "a Depth Anything folder",
                    "depth-anything-v2-small"),
    "pose_model": ("pose model", ModelKind.POSE, "is_pose_model", "a ViTPose folder", "vitpose-base-simple"),
    "person_detector": ("person detector", ModelKind.DETECTOR, "is_person_detector", "an RT-DETR folder",
                        "rtdetr-r50vd-coco-o365"),
}


def map_of(args: argparse.Namespace) -> Callable[[str], ControlMap] | None:
    """How --preprocess depth or pose makes a control picture's map: the `ControlMap` for a picture's digest, with the
    models named by --depth-model, --pose-model and --person-detector, else the installed ones; None for the
    other preprocessors."""
    if args.preprocess not in (DEPTH, POSE) or not args.control:
        return None
    from hypersd_desktop.worker.protocol import ControlMap

    options = ("depth_model",) if args.preprocess == DEPTH else ("pose_model", "person_detector")
    model, *detector = (map_model(args, option) for option in options)
    return lambda image: ControlMap(image, model, args.preprocess, *detector)


def map_model(args: argparse.Namespace, option: str, wanted_by: str = "") -> str:
    from hypersd_desktop.engine import inspect

    what, kind, check, reads, entry = MAP_MODELS[option]
    flag = "--" + option.replace("_", "-")
    if getattr(args, option) is not None:
        path = Path(resolver()(getattr(args, option)))
        if not getattr(inspect, check)(path):
            raise InputError(f"{flag} {getattr(args, option)} is not a {what} the app reads: {reads} as the hub has "
                             f"it ({', '.join(inspect.MAP_MODEL_FILES)}).")
        return str(path)
    from hypersd_desktop.models.library import ModelLibrary

    library = ModelLibrary(AppPaths.default())
    try:
        installed = library.registry.list(kind=kind)
    finally:
        library.close()
    if not installed:
        raise InputError(f"{wanted_by or f'--preprocess {args.preprocess}'} needs a {what}: install one with "
                         f"`hypersd-desktop models download {entry}`, or name a folder with {flag}.")
    return installed[0].path


def with_maps(request: GenerationRequest, make: Callable[[str], str]) -> GenerationRequest:
    """`request` with each control picture replaced by the map `make` turns its digest into."""
    return request.replace(controls=tuple(dataclasses.replace(c, image=make(c.image)) for c in request.controls))


PICTURE_SUFFIXES = (".jpg", ".jpeg", ".webp", ".avif", ".tif", ".tiff", ".bmp", ".gif", ".jxl", ".heic")


def out_files(out: Path | None, count: int) -> list[Path] | None:
    """The files `--out` names for `count` images, or None where it names a folder (or is not given): a `.png`
    name that is no folder is the file (`cat.png`); several images number it (`cat-1.png`, `cat-2.png`)."""
    if out is None or out.is_dir() or out.suffix.lower() != ".png":
        if out is not None and not out.is_dir() and out.suffix.lower() in PICTURE_SUFFIXES:
            raise InputError(f"--out {out}: images are written as PNG, which keeps their parameters for reuse; name "
                             f"a .png file ({out.with_suffix('.png').name}) or a folder.")
        return None
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{k}{out.suffix}") for k in range(1, count + 1)]


def plot_of(args: argparse.Namespace, request: GenerationRequest) -> PlotSpec | None:
    """The X/Y/Z plot --x-axis, --y-axis and --z-axis ask for (its random seeds chosen, each image checked), or
    None."""
    if args.x_axis is None:
        if args.y_axis is not None or args.z_axis is not None:
            raise InputError(f"--{'y' if args.y_axis is not None else 'z'}-axis is part of an X/Y/Z plot: give its "
                             "columns with --x-axis too.")
        return None
    if args.out is not None and not args.out.is_dir() and args.out.suffix:
        raise InputError(f"--out {args.out}: a plot writes its images and its grid into a folder; name a folder.")
    resolve = resolver()  # a Hyper-SD file's or a model's name: the installed file
    vae_of = None if args.vae else automatic_vae  # each model's own automatic VAE, unless --vae names one for all
    axes = (args.x_axis, args.y_axis, args.z_axis)
    styles = styles_of_book() if any(axis is not None and axis.axis == Axis.STYLES for axis in axes) else []
    spec = PlotSpec(request, *(axis.looked_up(resolve, vae_of).styled(styles) if axis else None
                               for axis in axes)).fixed()
    spec.cells()
    return spec


def run(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    make_map = map_of(args)
    paths = AppPaths.default()
    spec = plot_of(args, request)
    files = out_files(args.out, request.batch_size) if spec is None else None
    out_dir = (files[0].parent if files else args.out) or paths.ensure().images
    if files:
        out_dir.mkdir(parents=True, exist_ok=True)

    from hypersd_desktop.engine.inspect import base_architecture
    from hypersd_desktop.engine.planning import plan

    # Check everything that can be checked from headers before torch is even imported.
    plan(request, base_architecture(request.base_model))
    with installed_library() as library:
        for note in library.unprompted_words((lora.path for lora in request.loras), request.prompt) \
                if library is not None and not args.json else ():
            print(f"note: {note}", file=sys.stderr)
    if importlib.util.find_spec("torch") is None:  # the packaged app: generation runs in the compute runtime
        return run_in_runtime(request, args, paths, make_map, spec)

    from hypersd_desktop.gallery.gallery import Gallery
    from hypersd_desktop.models.library import ModelLibrary
    from hypersd_desktop.worker.service import GenerationService

    library = ModelLibrary(paths)
    gallery = None if args.no_gallery else Gallery(paths)
    warn(gallery.notice if gallery is not None else None)
    service = GenerationService(paths, gallery, library.hash_cache())
    if make_map is not None:
        request = with_maps(request, lambda image: service.inputs.add(
            service.control_map(make_map(image), request.device)[0], f"The {args.preprocess} map"))
    if spec is not None:
        if make_map is not None:
            spec = dataclasses.replace(spec, base=request)
        return _plot(service, spec, args, out_dir, library, gallery)
    with ProgressBar("generate", unit="step", enabled=False if args.json else None) as bar:
        show = StageProgress(bar, quiet=args.json)
        results = service.generate(request, on_progress=lambda p: show(p.stage, p.step, p.total_steps))
    if not args.json:
        for warning in results[0].warnings:
            print(f"warning: {warning}", file=sys.stderr)
    for k, result in enumerate(results):
        path = service.save(result, files[k] if files else None, out_dir).path
        settings = result.settings
        if args.json:
            print(json.dumps({
                "path": str(path), "seed": result.seed,
                **({"variation_seed": result.variation_seed} if result.request.varied else {}),
                **to_data(settings), "warnings": list(result.warnings),
                "timings": {k: round(v, 4) for k, v in result.timings.items()},
            }), flush=True)
        else:
            varied = f" varied by {result.variation_seed}" if result.request.varied else ""
            print(f"{path}  (seed {result.seed}{varied}, {settings.steps} step{'' if settings.steps == 1 else 's'}, "
                  f"{settings.scheduler}, "
                  f"{result.timings['per_image_s'] * 1000:.0f} ms per image)")
    if gallery is not None:
        gallery.close()
    library.registry.mark_used(request.model_paths())
    library.close()
    return 0


def _plot(service, spec: PlotSpec, args: argparse.Namespace, out_dir: Path, library, gallery) -> int:
    """Make an X/Y/Z plot's images and its grid, saying where each went."""
    with ProgressBar("x/y/z plot", unit="image", enabled=False if args.json else None) as bar:
        show = StageProgress(bar, quiet=args.json)
        made = service.plot(spec, on_progress=lambda p: show(p.stage, p.step, p.total_steps), out_dir=out_dir)
    warnings = dict.fromkeys(warning for saved in made for warning in saved.result.warnings)
    for warning in () if args.json else warnings:
        print(f"warning: {warning}", file=sys.stderr)
    cells = spec.cells()
    for k, saved in enumerate(made):
        grid = k == len(cells)
        if args.json:
            place = {} if grid else spec.places(cells[k])
            print(json.dumps({"path": str(saved.path), "seed": saved.result.seed, "grid": grid, **place}), flush=True)
        else:  # each image by its place in the grid: `Steps: 2, Seed: 7`
            print(f"{saved.path}  ({f'the grid: {spec.describe()}' if grid else spec.place(cells[k])})")
    if gallery is not None:
        gallery.close()
    library.registry.mark_used(spec.base.model_paths())
    library.close()
    return 0


class StageProgress:
    """Feeds a job's progress to `bar`: its steps, and before them a stage such as the ONNX export (in
    percent, announced once on stderr: it takes minutes)."""

    def __init__(self, bar: ProgressBar, quiet: bool = False) -> None:
        self.bar = bar
        self.quiet = quiet
        self.stage = ""

    def __call__(self, stage: str, step: int, total: int) -> None:
        name = stage.split(":")[0]
        if name != self.stage:
            self.bar.close()
            self.stage = name
            if name == HIRES_STAGE:  # the second pass's steps
                self.bar.title, self.bar.unit = "hires fix", "step"
            elif counts_steps(name):  # a tile's, face's or hand's steps, one by one
                self.bar.title, self.bar.unit = name.lower(), "step"
            elif name == PLOT_STAGE:  # a plot's images made
                self.bar.title, self.bar.unit = "x/y/z plot", "image"
            elif name.startswith(UPSCALE_STAGE):  # an upscaler model's tiles, each time it runs
                self.bar.title, self.bar.unit = name.lower(), "tile"
            else:
                self.bar.title, self.bar.unit = ("export", "%") if name else ("generate", "step")
                if name and not self.quiet:
                    print(f"{name}; this takes a while once.", file=sys.stderr, flush=True)
        if name == PLOT_STAGE:  # counted in hundredths of an image
            step, total = step // PLOT_PARTS, total // PLOT_PARTS
        self.bar(TransferProgress(self.bar.title, "", step, total))


def runtime_worker(paths: AppPaths, on_event: Callable, engine_choice: tuple[str, str]):
    """A worker client for the compute runtime's worker, started (the runtime updated first where the app was):
    how the packaged app's command line, which has no torch, generates and enlarges."""
    from hypersd_desktop.core.errors import AppError
    from hypersd_desktop.runtime.install import runtime_worker_command, status
    from hypersd_desktop.worker.client import WorkerClient

    if status(paths).state == "outdated":  # the app was updated: its runtime follows, as in the window
        from hypersd_desktop.cli.runtime import StepPrinter
        from hypersd_desktop.runtime.install import RuntimeInstaller

        print(f"{status(paths).message} Updating it first.", file=sys.stderr)
        report = StepPrinter()
        try:
            RuntimeInstaller(paths, on_progress=report).update()
        finally:
            report.close()
    command = runtime_worker_command(paths)
    if command is None:
        raise AppError(f"{status(paths).message} Generation needs it: run `hypersd-desktop runtime install`.")
    client = WorkerClient(on_event, command=command, previews=False)
    client.engine_choice = engine_choice
    client.start()
    return client


def run_in_runtime(request: GenerationRequest, args: argparse.Namespace, paths: AppPaths,
                   make_map: Callable[[str], ControlMap] | None = None, spec: PlotSpec | None = None) -> int:
    """Generate through the worker in the installed compute runtime: it saves the images and adds them
    to the gallery; with --out, a copy of each goes there too. With `make_map`, the worker makes the
    control pictures' depth or pose maps first, and the request names them."""
    from hypersd_desktop.core.errors import AppError
    from hypersd_desktop.worker.client import WorkerUnavailable
    from hypersd_desktop.worker.protocol import (
        ImageReady, JobFailed, JobFinished, JobProgress, MapReady, WorkerReady,
    )

    if args.no_gallery:
        raise InputError("--no-gallery needs torch in this program; the compute runtime's worker always adds its "
                         "images to the gallery.")
    files = out_files(args.out, request.batch_size) if spec is None else None
    events: queue.Queue = queue.Queue()

    def submit(request: GenerationRequest) -> int:
        return client.submit(request) if spec is None else client.submit_plot(dataclasses.replace(spec, base=request))

    client = runtime_worker(paths, events.put, (request.backend, request.device))
    job = None
    pictures = {c.image for c in request.controls} if make_map else set()  # their maps come first
    maps: dict[str, str] = {}  # picture -> its map
    try:
        with ProgressBar("generate", unit="step", enabled=False if args.json else None) as bar:
            show = StageProgress(bar, quiet=args.json)
            while True:
                event = events.get()
                if isinstance(event, WorkerUnavailable):
                    raise AppError(event.message)
                if isinstance(event, WorkerReady) and job is None:
                    for picture in sorted(pictures):
                        client.submit_map(make_map(picture))
                    if not pictures:
                        job = submit(request)
                elif isinstance(event, MapReady):
                    maps[event.map.image] = client.inputs.add(event.png, f"The {args.preprocess} map")
                    if len(maps) == len(pictures):
                        request = with_maps(request, maps.__getitem__)
                        job = submit(request)
                elif isinstance(event, JobProgress):
                    show(event.stage, event.step, event.total_steps)
                elif isinstance(event, ImageReady):
                    path = Path(event.path)
                    if args.out:
                        path = files[event.index] if files else args.out / path.name
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_bytes(event.png)
                    print(json.dumps({"path": str(path), "seed": event.seed, "image_id": event.image_id})
                          if args.json else f"{path}  (seed {event.seed}, in the compute runtime)", flush=True)
                elif isinstance(event, JobFailed):
                    raise AppError(event.message)
                elif isinstance(event, JobFinished) and event.job_id == job:
                    for warning in () if args.json else event.warnings:
                        print(f"warning: {warning}", file=sys.stderr)
                    return 0
    except KeyboardInterrupt:
        if job is not None:
            client.cancel(job)
        raise
    finally:
        client.shutdown(timeout=10)
