"""`hypersd-desktop batch`: a job file of prompts generated into the gallery and exported."""

from __future__ import annotations

import sys
from pathlib import Path

from hypersd_desktop.cli.common import (
    add_style_option, bounded_int, parse_lora, ProgressBar, resolver, styles_named, warn, with_windows_model,
)
from hypersd_desktop.cli.gallery import add_export_options, export_options
from hypersd_desktop.core.dynamic_prompts import Wildcards, wildcards_folder
from hypersd_desktop.core.errors import CancelledError, InputError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.vocab import upscaler_families


def add_parser(commands) -> None:
    batch = commands.add_parser("batch", help="generate a job file of prompts into the gallery and export them")
    batch.add_argument("job", type=Path, nargs="?",
                       help="text (one prompt a line, or A1111 prompt-file lines: --prompt … --steps …), CSV or JSON "
                            "job file (may be left out with --pictures and --picture-prompts)")
    batch.add_argument("--model", help="default base model (path or installed name; default: the window's, with its "
                                       "Hyper-SD file unless --lora names one)")
    batch.add_argument("--lora", action="append", default=[], type=parse_lora, metavar="PATH[:WEIGHT]")
    batch.add_argument("--steps", type=int)
    batch.add_argument("--guidance", type=float)
    add_style_option(batch)
    batch.add_argument("--width", type=int)
    batch.add_argument("--height", type=int)
    batch.add_argument("--seed", type=int, default=0, help="first seed (item k uses seed + k unless it names one)")
    batch.add_argument("--seeds-per-prompt", type=bounded_int(1, 10_000), default=1)
    batch.add_argument("--pictures", type=Path, metavar="FOLDER",
                       help="run the job on each picture in FOLDER (image-to-image, A1111's img2img batch): every "
                            "prompt once for each picture, at the picture's own size unless --width/--height say "
                            "otherwise; {picture} in --template names each file after its picture")
    batch.add_argument("--masks", type=Path, metavar="FOLDER",
                       help="with --pictures: inpaint each picture through the mask of its name in FOLDER (white "
                            "repainted; any extension), as A1111's inpaint batch mask directory; one mask there "
                            "inpaints every picture")
    batch.add_argument("--mask-blur", type=int, help="pixels of blur on the masks' edges (default 4)")
    batch.add_argument("--picture-prompts", action="store_true",
                       help="with --pictures: each picture's own prompts, as its file says it was made (A1111's, "
                            "ComfyUI's … as reuse reads them), follow the job's, as A1111's img2img batch adds a "
                            "picture's PNG info; the job file may then be left out")
    batch.add_argument("--enlarge", type=float, metavar="SCALE", default=1.0,
                       help="with --pictures: make each image SCALE times its picture's size (above 1, at most 4), the "
                            "picture enlarged (Lanczos, or --upscaler) and repainted at --strength: an upscale of "
                            "each (about 0.5 keeps the picture and adds detail)")
    batch.add_argument("--upscaler", metavar="FILE|NAME",
                       help="with --enlarge: the upscaler model that enlarges each picture before it is repainted, "
                            f"an {upscaler_families()} file in safetensors or an installed one's name")
    batch.add_argument("--strength", type=float,
                       help="how much of each picture is repainted, 0-1 (default 0.75); a job's strength column "
                            "sets an item's own")
    batch.add_argument("--device", default="auto")
    batch.add_argument("--dtype", default="auto")
    add_export_options(batch)




def run(args) -> int:
    from hypersd_desktop.gallery.gallery import Gallery

    gallery = Gallery(AppPaths.default())
    warn(gallery.notice)
    try:
        return _batch(gallery, args)
    finally:
        gallery.close()


def _batch(gallery, args) -> int:
    from hypersd_desktop.cli.generate import checked_upscaler
    from hypersd_desktop.engine.planning import reads_negative
    from hypersd_desktop.engine.types import GenerationRequest, LoraSpec
    from hypersd_desktop.worker import batch

    if args.enlarge != 1.0 and (args.pictures is None or not 1.0 < args.enlarge <= 4.0):
        raise InputError("--enlarge makes each of the --pictures FOLDER's pictures larger, above 1 and at most 4 times"
                         f"; got {args.enlarge:g}{'' if args.pictures is not None else ' without --pictures'}.")
    if args.upscaler is not None and args.enlarge == 1.0:
        raise InputError("--upscaler enlarges each picture before it is repainted: it goes with --enlarge.")
    if args.masks is not None and args.pictures is None:
        raise InputError("--masks inpaints the --pictures FOLDER's pictures; add --pictures.")
    if args.picture_prompts and args.pictures is None:
        raise InputError("--picture-prompts reads the prompts of the --pictures FOLDER's pictures; add --pictures.")
    if args.job is None and not args.picture_prompts:
        raise InputError("Give a job file of prompts, or --pictures FOLDER with --picture-prompts to make each picture "
                         "with its own prompt.")
    resolve = resolver()
    unet = None
    if args.model is None:
        args.model, args.lora, unet = with_windows_model(args.lora, named=False, resolve=resolve)
    defaults = GenerationRequest(
        prompt="", base_model=resolve(args.model), unet=unet, steps=args.steps, guidance=args.guidance,
        width=args.width, height=args.height, seed=args.seed, device=args.device, dtype=args.dtype,
        loras=tuple(LoraSpec(resolve(spec.path), spec.weight) for spec in args.lora),
        **({} if args.strength is None else {"strength": args.strength}),
        **({} if args.mask_blur is None else {"mask_blur": args.mask_blur}),
        upscaler=checked_upscaler(Path(resolve(args.upscaler))) if args.upscaler is not None else None,
    )
    options = export_options(args)
    options.validate()
    items = batch.parse_job(args.job) if args.job is not None else [{"prompt": ""}]
    if args.pictures is not None:
        masks = batch.pictures_in(args.masks.expanduser()) if args.masks is not None else []
        items = batch.with_pictures(items, batch.pictures_in(args.pictures.expanduser()), args.picture_prompts, masks,
                                    args.enlarge)
    styles = styles_named(args.style)  # added to each item's prompts, as A1111 adds styles to prompt-file lines
    from hypersd_desktop.models.library import ModelLibrary
    from hypersd_desktop.worker.service import GenerationService

    service = GenerationService(gallery.paths, gallery, ModelLibrary(gallery.paths).hash_cache())
    library = ModelLibrary(gallery.paths)
    try:
        defaults = defaults.replace(vae=library.vae_for(defaults.base_model))
        units = batch.plan_units(items, defaults, args.seeds_per_prompt, resolve, library.embeddings_named,
                                 library.vae_for, library.loras_tagged, Wildcards(wildcards_folder(gallery.paths)),
                                 styles, reads_negative, service.inputs.add_file)
    finally:
        library.close()
    if args.strength is not None and not any(unit.request.init_image for unit in units):
        warn("--strength is how much of a picture is repainted; this job starts from none (add --pictures FOLDER "
             "or an image column)")
    job_id = batch.job_id_for(items, defaults, options, args.seeds_per_prompt, styles)
    runner = batch.BatchRunner(service)
    source = args.job.name if args.job is not None else f"the pictures in {args.pictures}"
    print(f"batch {job_id}: {len(units)} images from {source} into {args.to}", file=sys.stderr)
    if note := batch.unused_options(items):
        print(f"note: {note}", file=sys.stderr)
    with ProgressBar("batch", unit="image") as bar:
        try:
            report = runner.run(job_id, units, args.to, options, on_progress=bar)
        except KeyboardInterrupt:
            raise CancelledError("batch stopped; run the same command again to continue where it stopped") from None
    print(f"done: {report.generated} generated, {report.skipped} already done; manifest: {report.manifest}")
    return 0
