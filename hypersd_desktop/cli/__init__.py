"""The `hypersd-desktop` command line: headless access to the same services as the window.

    hypersd-desktop [FILE …]             the window (files open in it as if dropped on it)
    hypersd-desktop generate --model PATH --prompt TEXT [options]
    hypersd-desktop describe IMAGE … [--tagger NAME] [--json]
    hypersd-desktop inspect FILE [--json]
    hypersd-desktop models|gallery ACTION …
    hypersd-desktop batch JOB --model PATH --to FOLDER
    hypersd-desktop runtime detect|status|install|update|remove

One module per command group, each with `add_parser(commands)` and `run(args)`. Bad input ends
with a one-line `error: …` on stderr and exit status 2; nothing is written.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from hypersd_desktop import __version__
from hypersd_desktop.cli import batch, describe, gallery, generate, inspect, models, runtime
from hypersd_desktop.cli.common import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_UNEXPECTED, TerminalSafe, speak_utf8
from hypersd_desktop.core.errors import AppError, CancelledError
from hypersd_desktop.core.logs import setup_logging

GROUPS = {"generate": generate, "describe": describe, "inspect": inspect, "models": models, "gallery": gallery,
          "batch": batch, "runtime": runtime}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hypersd-desktop",
        description="Stable Diffusion 1.5 and SDXL in 1 to 8 steps with Hyper-SD.",
        epilog="Without a command, opens the window. Image or model files named instead of a command open in it as "
               "if dropped on it (a file manager's Open With does this); with the window already open, they go to it.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS.values():
        group.add_parser(commands)
    return parser


def opened_files(arguments: list[str]) -> list[str] | None:
    """Paths given instead of a command, as a file manager's Open With, a drop on the app's icon or the Linux
    packages' desktop entry (`%F`) give them; None if these arguments are not that."""
    arguments = [a for a in arguments if not a.startswith("-psn_")]  # older macOS adds a process serial number
    if arguments and arguments[0] not in GROUPS and not arguments[0].startswith("-") and \
            all(Path(a).exists() for a in arguments):
        return arguments
    return None


def main(argv: list[str] | None = None) -> int:
    speak_utf8(sys.stdout)  # before argparse, which may print an argument back
    speak_utf8(sys.stderr)
    files = opened_files(sys.argv[1:] if argv is None else argv)
    if files is not None:
        from hypersd_desktop.app import run_app

        return run_app(sys.argv[:1], files)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from hypersd_desktop.app import run_app

        return run_app(sys.argv[:1])
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = TerminalSafe(stdout), TerminalSafe(stderr)
    try:
        return GROUPS[args.command].run(args)
    except CancelledError as error:
        print(f"cancelled: {error}", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:  # generation writes nothing partial; gallery work keeps what it finished
        done = ("what was finished is kept" if args.command in ("gallery", "batch") else
                "what was downloaded is kept, and installing again resumes" if args.command == "runtime" else
                "the captions written are kept, and running it again goes on" if getattr(args, "captions", False) else
                "nothing was written")
        print(f"\ncancelled: {done}", file=sys.stderr)
        return EXIT_CANCELLED
    except AppError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:  # noqa: BLE001 - the command line's boundary: no traceback on the terminal
        path = setup_logging("cli")
        logging.getLogger("hypersd.cli").error("%s failed", " ".join(sys.argv), exc_info=error)
        print(f"error: unexpected {type(error).__name__}: {error}. This is a bug in HyperSD Desktop; the details "
              f"are in {path}.", file=sys.stderr)
        return EXIT_UNEXPECTED
    finally:
        sys.stdout, sys.stderr = stdout, stderr
