"""Download the wheels of the `cpu` runtime lock for this platform into build/wheelhouse/<lock>/.

The runtime install test (tests/test_installer.py) installs from this folder with no index, as an
offline machine would from an embedded runtime; tests never reach the network, so this set-up step
(`python3 dev.py wheelhouse`, run by .ci/run) fetches them first. Every file is checked against the
lock's hashes by pip; a folder already complete is left as it is.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypersd_desktop.runtime.locks import load_lock, locks_dir  # noqa: E402


def wheelhouse_dir(variant: str = "cpu") -> Path | None:
    lock = load_lock(variant)
    return ROOT / "build" / "wheelhouse" / lock.name if lock else None


def complete(folder: Path, variant: str = "cpu") -> bool:
    lock = load_lock(variant)
    names = {wheel.name.split("-")[0].lower().replace("_", "-") for wheel in folder.glob("*.whl")}
    return lock is not None and all(package.name.replace("_", "-") in names for package in lock.packages)


def main() -> int:
    lock = load_lock("cpu")
    if lock is None:
        print("wheelhouse: no cpu runtime lock for this platform")
        return 1
    folder = wheelhouse_dir()
    if folder.is_dir() and complete(folder):
        print(f"wheelhouse: {folder.relative_to(ROOT)} is complete")
        return 0
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes", "--only-binary",
               ":all:", "-d", str(folder), "-r", str(locks_dir() / f"{lock.name}.txt")]
    # The configured indexes first (a machine with a local copy of torch's CPU wheel has it there), then the
    # lock's own index for torch: pip cannot scope an index to one package, and asks it for every one.
    if subprocess.run(command).returncode != 0:
        subprocess.run([*command, *(["--extra-index-url", lock.index] if lock.index else [])], check=True)
    print(f"wheelhouse: {folder.relative_to(ROOT)} ({sum(p.stat().st_size for p in folder.glob('*.whl')) / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
