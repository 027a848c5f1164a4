"""`hypersd-desktop runtime`: the compute runtime the packaged app generates in (see hypersd_desktop/runtime/).

    runtime detect                 the hardware, and the runtime that fits it
    runtime status                 what is installed
    runtime install [VARIANT]      install (or switch to) a variant; --repair reinstalls every package
    runtime update                 bring a runtime made for another app version in line
    runtime remove                 delete it
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from hypersd_desktop.cli.common import ProgressBar
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.progress import TransferProgress


def add_parser(commands) -> None:
    runtime = commands.add_parser("runtime", help="install, update or remove the compute runtime (torch for this machine)")
    actions = runtime.add_subparsers(dest="action", metavar="ACTION", required=True)
    detect = actions.add_parser("detect", help="the GPU and CPU, and the runtime variant that fits them")
    detect.add_argument("--json", action="store_true")
    state = actions.add_parser("status", help="the installed runtime")
    state.add_argument("--json", action="store_true")
    install = actions.add_parser("install", help="install a runtime variant (default: the one that fits)")
    install.add_argument("variant", nargs="?", help="cuda, mps, directml or cpu")
    install.add_argument("--repair", action="store_true", help="reinstall every package")
    update = actions.add_parser("update", help="update a runtime made for another version of the app")
    for parser in (install, update):
        parser.add_argument("--python", default="", help="the interpreter to build on (default: one uv downloads, "
                                                         "or the one shipped with the app)")
        parser.add_argument("--find-links", type=Path, action="append", default=[], metavar="DIR",
                            help="a folder of wheels to install from (repeatable)")
        parser.add_argument("--offline", action="store_true", help="use only --find-links folders, no index")
        parser.add_argument("--app-wheel", type=Path, help="the app's wheel to install (default: this version's)")
    actions.add_parser("remove", help="delete the runtime and its downloads")


def run(args: argparse.Namespace) -> int:
    from hypersd_desktop.runtime import hardware, install, locks

    paths = AppPaths.default()
    if args.action == "detect":
        found = hardware.detect()
        offered = {variant: locks.load_lock(variant) for variant in locks.available_variants()}
        choice = hardware.recommend(found, {variant: lock.needs for variant, lock in offered.items()})
        if args.json:
            print(json.dumps({"hardware": asdict(found) | {"cpu_features": sorted(found.cpu_features)},
                              "recommended": choice.variant, "reason": choice.reason, "notes": list(choice.notes),
                              "variants": {v: {"download_bytes": lock.download_bytes, "packages": len(lock.packages)}
                                           for v, lock in offered.items()}}, default=str))
            return 0
        print("\n".join(found.describe()))
        print(f"\nrecommended: {choice.variant or 'none'} — {choice.reason}")
        for note in choice.notes:
            print(f"note: {note}")
        for variant, lock in offered.items():
            print(f"  {variant:9} {locks.VARIANT_TITLES[variant]}: {lock.download_bytes / 2**20:,.0f} MiB to download, "
                  f"{len(lock.packages)} packages")
        return 0
    if args.action == "status":
        current = install.status(paths)
        if args.json:
            print(json.dumps({"state": current.state, "message": current.message,
                              "manifest": asdict(current.manifest) if current.manifest else None,
                              "python": str(current.python) if current.python else None}))
        else:
            print(current.message)
        return 0 if current.state == "ready" else 1
    if args.action == "remove":
        freed = install.RuntimeInstaller.remove(paths)
        print(f"removed the compute runtime ({freed / 2**20:,.0f} MiB freed)" if freed else "no compute runtime was installed")
        return 0
    sources = install.Sources(python=args.python, find_links=tuple(p.resolve() for p in args.find_links),
                              offline=args.offline, app_wheel=args.app_wheel.resolve() if args.app_wheel else None)
    report = StepPrinter()
    installer = install.RuntimeInstaller(paths, sources, on_progress=report)
    try:
        if args.action == "update":
            manifest = installer.update()
        else:
            variant = args.variant or recommended_variant()
            manifest = installer.install(variant, repair=args.repair)
    finally:
        report.close()
    print(f"the {manifest.variant} runtime is ready: HyperSD Desktop {manifest.app_version} on {manifest.python}, "
          f"{manifest.installed_bytes / 2**20:,.0f} MiB in {install.runtime_dir(paths)}")
    return 0


def recommended_variant() -> str:
    from hypersd_desktop.core.errors import InputError
    from hypersd_desktop.runtime import hardware, locks

    offered = {variant: locks.load_lock(variant) for variant in locks.available_variants()}
    choice = hardware.recommend(hardware.detect(), {variant: lock.needs for variant, lock in offered.items()})
    if not choice.variant:
        raise InputError(choice.reason)
    print(f"installing the {choice.variant} runtime: {choice.reason}", file=sys.stderr)
    return choice.variant


class StepPrinter:
    """One line on stderr a step ("[ 40%] torch 2.13.0"), and a byte bar on a terminal."""

    def __init__(self) -> None:
        self.bar = ProgressBar("runtime")
        self.item = None

    def __call__(self, progress: TransferProgress) -> None:
        if progress.item != self.item:
            self.item = progress.item
            share = progress.done / progress.total if progress.total else 0
            print(f"[{share:4.0%}] {progress.item} ({progress.done / 2**20:,.0f} of {progress.total / 2**20:,.0f} MiB)",
                  file=sys.stderr, flush=True)
        self.bar(progress)

    def close(self) -> None:
        self.bar.close()
