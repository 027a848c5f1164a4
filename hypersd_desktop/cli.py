"""The `hypersd-desktop` command line: headless access to the same services as the window.

    hypersd-desktop generate --model PATH --prompt TEXT [options]
    hypersd-desktop inspect FILE [--json]

Bad input ends with a one-line `error: …` on stderr and exit status 2; nothing is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from hypersd_desktop import __version__, cli_gallery, cli_models
from hypersd_desktop.core.errors import AppError, CancelledError, InputError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.engine.types import DEVICES, DTYPES, SCHEDULERS, GenerationRequest, LoraSpec

EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130


def parse_lora(text: str) -> LoraSpec:
    """`PATH` or `PATH:WEIGHT` (a drive letter's colon is not mistaken for a weight)."""
    path, sep, weight = text.rpartition(":")
    if sep and path and not weight.startswith(("\\", "/")):
        try:
            return LoraSpec(path, float(weight))
        except ValueError:
            pass
    return LoraSpec(text, 1.0)


def parse_timesteps(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"timesteps must be integers separated by commas, not {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hypersd-desktop",
        description="Stable Diffusion 1.5 and SDXL in 1 to 8 steps with Hyper-SD.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    generate = commands.add_parser("generate", help="generate images from a prompt")
    generate.add_argument("--model", required=True,
                          help="base model: a diffusers folder, a .safetensors checkpoint, or an installed model's name")
    generate.add_argument("--prompt", required=True)
    generate.add_argument("--negative", default="", help="negative prompt (used only with guidance above 1)")
    generate.add_argument("--lora", action="append", default=[], type=parse_lora, metavar="PATH[:WEIGHT]",
                          help="a LoRA file or installed LoRA's name, repeatable; a Hyper-SD file name sets the recipe")
    generate.add_argument("--unet", help="a full UNet replacing the base model's (the Hyper-SDXL 1-step UNet)")
    generate.add_argument("--vae", help="a VAE replacing the base model's (e.g. the fp16-safe SDXL VAE)")
    generate.add_argument("--config", help="diffusers config folder for a single-file checkpoint (default: bundled)")
    generate.add_argument("--recipe", help="force a Hyper-SD recipe by name (default: from the LoRA/UNet file names)")
    generate.add_argument("--steps", type=int)
    generate.add_argument("--guidance", type=float)
    generate.add_argument("--eta", type=float, help="TCD eta: lower keeps more detail at more steps (default 1.0)")
    generate.add_argument("--scheduler", choices=SCHEDULERS, default="auto")
    generate.add_argument("--timesteps", type=parse_timesteps, metavar="T,...", help="explicit timesteps (TCD, LCM)")
    generate.add_argument("--seed", type=int, default=None, help="seed of the first image (default: random)")
    generate.add_argument("--width", type=int)
    generate.add_argument("--height", type=int)
    generate.add_argument("--batch", type=int, default=1, help="images per run; image k uses seed + k")
    generate.add_argument("--device", choices=DEVICES, default="auto")
    generate.add_argument("--dtype", choices=DTYPES, default="auto")
    generate.add_argument("--taesd", help="TAESD folder: fast previews, and with --fast-decode the final decode")
    generate.add_argument("--fast-decode", action="store_true", help="decode with TAESD instead of the full VAE")
    generate.add_argument("--out", type=Path, help="output folder (default: the app's images folder)")
    generate.add_argument("--json", action="store_true", help="print one JSON object per image")
    generate.add_argument("--no-gallery", action="store_true", help="do not add the images to the gallery")

    inspect = commands.add_parser("inspect", help="say what a .safetensors weights file is")
    inspect.add_argument("file", type=Path)
    inspect.add_argument("--json", action="store_true")

    cli_models.add_parser(commands)
    cli_gallery.add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from hypersd_desktop.app import run_app

        return run_app(sys.argv[:1])
    try:
        if args.command == "inspect":
            return run_inspect(args)
        if args.command == "models":
            return cli_models.run(args)
        if args.command in ("gallery", "batch"):
            return cli_gallery.run(args)
        return run_generate(args)
    except CancelledError as error:
        print(f"cancelled: {error}", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:  # generation writes nothing partial; gallery work keeps what it finished
        done = "what was finished is kept" if args.command in ("gallery", "batch") else "nothing was written"
        print(f"\ncancelled: {done}", file=sys.stderr)
        return EXIT_CANCELLED
    except AppError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def run_inspect(args: argparse.Namespace) -> int:
    from hypersd_desktop.engine.inspect import inspect_file
    from hypersd_desktop.engine.recipes import ARCHITECTURE_NAMES

    info = inspect_file(args.file)
    if args.json:
        print(json.dumps({
            "kind": info.kind, "architecture": info.architecture, "format": info.format,
            "hyper_sd": info.hyper_sd, "tensors": info.tensor_count, "size_bytes": info.size_bytes,
        }))
        return 0
    arch = ARCHITECTURE_NAMES.get(info.architecture or "", "unknown architecture")
    print(f"{args.file.name}: {info.kind} for {arch}, {info.format or 'unknown'} keys, "
          f"{info.tensor_count} tensors, {info.size_bytes / 1e6:.1f} MB")
    if info.hyper_sd:
        print(f"Hyper-SD file: {info.hyper_sd}")
    return 0


def request_from_args(args: argparse.Namespace) -> GenerationRequest:
    import secrets

    resolve = _resolver()
    for flag, path in (("--unet", args.unet), ("--vae", args.vae)):
        if path is not None and not Path(path).exists():
            raise InputError(f"{flag} {path} does not exist; check the path.")
    preview = "taesd" if args.taesd else "none"
    return GenerationRequest(
        prompt=args.prompt,
        negative_prompt=args.negative,
        base_model=resolve(args.model),
        base_config=args.config,
        unet=str(Path(args.unet).resolve()) if args.unet else None,
        vae=str(Path(args.vae).resolve()) if args.vae else None,
        loras=tuple(LoraSpec(resolve(spec.path), spec.weight) for spec in args.lora),
        recipe=args.recipe,
        steps=args.steps,
        guidance=args.guidance,
        eta=args.eta,
        scheduler=args.scheduler,
        timesteps=args.timesteps,
        seed=args.seed if args.seed is not None else secrets.randbelow(2**32),
        width=args.width,
        height=args.height,
        batch_size=args.batch,
        device=args.device,
        dtype=args.dtype,
        preview=preview,
        decoder="taesd" if args.fast_decode else "vae",
        taesd=str(Path(args.taesd).resolve()) if args.taesd else None,
    )


def _resolver():
    """Paths as given; a name that is no path is looked up in the model library."""
    library = None

    def resolve(name_or_path: str) -> str:
        nonlocal library
        path = Path(name_or_path).expanduser()
        if path.exists():
            return str(path.resolve())
        if library is None:
            from hypersd_desktop.models.library import ModelLibrary

            library = ModelLibrary(AppPaths.default())
        return library.resolve(name_or_path)

    return resolve


def run_generate(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    paths = AppPaths.default()
    out_dir = args.out or paths.ensure().images

    from hypersd_desktop.engine.planning import plan
    from hypersd_desktop.engine.loading import base_architecture

    # Check everything that can be checked from headers before torch is even imported.
    plan(request, base_architecture(request.base_model))

    from hypersd_desktop.engine.torch_engine import TorchEngine
    from hypersd_desktop.gallery.gallery import Gallery
    from hypersd_desktop.models.library import ModelLibrary
    from hypersd_desktop.worker.output import save_result

    show_progress = sys.stderr.isatty() and not args.json

    def on_progress(progress) -> None:
        if show_progress:
            print(f"\rstep {progress.step}/{progress.total_steps}", end="", file=sys.stderr, flush=True)

    results = TorchEngine().generate(request, on_progress=on_progress)
    if show_progress:
        print(file=sys.stderr)
    if not args.json:
        for warning in results[0].warnings:
            print(f"warning: {warning}", file=sys.stderr)
    library = ModelLibrary(paths)
    hashes = library.hash_cache()
    gallery = None if args.no_gallery else Gallery(paths)
    for result in results:
        path = save_result(result, out_dir, hashes)
        if gallery is not None:
            gallery.add_file(path, device=result.settings.device, time_taken=result.timings["per_image_s"])
        settings = result.settings
        if args.json:
            print(json.dumps({
                "path": str(path), "seed": result.seed, **dataclasses.asdict(settings), "warnings": list(result.warnings),
                "timings": {k: round(v, 4) for k, v in result.timings.items()},
            }), flush=True)
        else:
            print(f"{path}  (seed {result.seed}, {settings.steps} steps, {settings.scheduler}, "
                  f"{result.timings['per_image_s'] * 1000:.0f} ms per image)")
    if gallery is not None:
        gallery.close()
    library.close()
    return 0
