"""`hypersd-desktop batch`: a job file of prompts generated into the gallery and exported."""

from __future__ import annotations

import sys
from pathlib import Path

from hypersd_desktop.cli.common import (
    add_style_option, bounded_int, parse_lora, ProgressBar, resolver, styles_named, warn, with_windows_model,
)
from hypersd_desktop.cli.gallery import add_export_options, export_options
from hypersd_desktop.core.dynamic_prompts import Wildcards, wildcards_folder
from hypersd_desktop.core.errors import CancelledError
from hypersd_desktop.core.paths import AppPaths


def add_parser(commands) -> None:
    batch = commands.add_parser("batch", help="generate a job file of prompts into the gallery and export them")
    batch.add_argument("job", type=Path, help="text (one prompt a line, or A1111 prompt-file lines: --prompt … --steps …), "
                       "CSV or JSON job file")
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
    from hypersd_desktop.engine.planning import reads_negative
    from hypersd_desktop.engine.types import GenerationRequest, LoraSpec
    from hypersd_desktop.worker import batch

    resolve = resolver()
    unet = None
    if args.model is None:
        args.model, args.lora, unet = with_windows_model(args.lora, named=False, resolve=resolve)
    defaults = GenerationRequest(
        prompt="", base_model=resolve(args.model), unet=unet, steps=args.steps, guidance=args.guidance,
        width=args.width, height=args.height, seed=args.seed, device=args.device, dtype=args.dtype,
        loras=tuple(LoraSpec(resolve(spec.path), spec.weight) for spec in args.lora),
    )
    options = export_options(args)
    options.validate()
    items = batch.parse_job(args.job)
    styles = styles_named(args.style)  # added to each item's prompts, as A1111 adds styles to prompt-file lines
    from hypersd_desktop.models.library import ModelLibrary

    library = ModelLibrary(gallery.paths)
    try:
        defaults = defaults.replace(vae=library.vae_for(defaults.base_model))
        units = batch.plan_units(items, defaults, args.seeds_per_prompt, resolve, library.embeddings_named,
                                 library.vae_for, library.loras_tagged, Wildcards(wildcards_folder(gallery.paths)),
                                 styles, reads_negative)
    finally:
        library.close()
    job_id = batch.job_id_for(items, defaults, options, args.seeds_per_prompt, styles)
    from hypersd_desktop.worker.service import GenerationService

    runner = batch.BatchRunner(GenerationService(gallery.paths, gallery, ModelLibrary(gallery.paths).hash_cache()))
    print(f"batch {job_id}: {len(units)} images from {args.job.name} into {args.to}", file=sys.stderr)
    if note := batch.unused_options(items):
        print(f"note: {note}", file=sys.stderr)
    with ProgressBar("batch", unit="image") as bar:
        try:
            report = runner.run(job_id, units, args.to, options, on_progress=bar)
        except KeyboardInterrupt:
            raise CancelledError("batch stopped; run the same command again to continue where it stopped") from None
    print(f"done: {report.generated} generated, {report.skipped} already done; manifest: {report.manifest}")
    return 0
