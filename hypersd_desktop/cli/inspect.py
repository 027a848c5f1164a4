"""`hypersd-desktop inspect`: what a weights file is, from its header alone."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hypersd_desktop.core.vocab import Architecture, ControlType, WeightsKind



def add_parser(commands) -> None:
    inspect = commands.add_parser("inspect", help="say what a .safetensors weights file is")
    inspect.add_argument("file", type=Path)
    inspect.add_argument("--json", action="store_true")



def run(args: argparse.Namespace) -> int:
    from hypersd_desktop.engine.inspect import (
        INPAINTING_CHANNELS, T2I_ADAPTER_FORMATS, base_has_vae, inspect_file, union_control_types, unknown_phrase,
    )

    info = inspect_file(args.file)
    if args.json:
        print(json.dumps({
            "kind": info.kind, "architecture": info.architecture, "family": info.family, "format": info.format,
            "hyper_sd": info.hyper_sd, "tensors": info.tensor_count, "size_bytes": info.size_bytes,
            "prediction": info.prediction or "epsilon", "zero_terminal_snr": info.zero_snr,
            "in_channels": info.in_channels,
            "has_vae": base_has_vae(args.file) if info.kind == WeightsKind.CHECKPOINT else None,
        }))
        return 0
    size = f"{info.tensor_count} tensors, {info.size_bytes / 1e6:.1f} MB"
    if info.kind == WeightsKind.UNKNOWN and info.format and not info.family:  # a kind the app names but does not use
        print(f"{args.file.name}: {unknown_phrase(info)}, which this app does not use; {size}")
        return 0
    if info.kind == WeightsKind.UPSCALER:  # for pictures of any model: no architecture, no key style
        print(f"{args.file.name}: upscaler for SD1.5 and SDXL images, {info.format}; {size}")
        return 0
    arch = (Architecture(info.architecture).label if info.architecture
            else f"{info.family} (not run by this app)" if info.family else "unknown architecture")
    print(f"{args.file.name}: {info.kind} for {arch}, {info.format or 'unknown'} keys, {size}")
    if info.hyper_sd:
        print(f"Hyper-SD file: {info.hyper_sd}")
    if (types := union_control_types(args.file)) is not None:
        print(f"A ControlNet Union model of {types} control types: {', '.join(ControlType.values()[:types])}")
    if info.format in T2I_ADAPTER_FORMATS:
        print("A T2I-Adapter: chosen where ControlNets are (--control), it reads its picture once an image")
    if info.in_channels == INPAINTING_CHANNELS:
        print("An inpainting model: its UNet also reads the mask and the masked picture (9 input channels)")
    if info.kind == WeightsKind.CHECKPOINT and not base_has_vae(args.file):
        print("No VAE inside: it runs with a VAE installed for its architecture, one beside it named "
              f"{args.file.stem}.vae.safetensors, or one named with --vae")
    if info.prediction:
        print("Predicts v (v-prediction)" + (", with zero terminal SNR" if info.zero_snr else "")
              + ": it runs with a v-prediction scheduler, without Hyper-SD files (they are trained on noise prediction)")
    return 0


