"""Set up and run HyperSD Desktop from a source checkout, on any platform.

    python3 dev.py run [ARGS...]     the app (with ARGS, the command line: `run generate ...`)
    python3 dev.py test [PYTEST ARGS...]   the layer contracts, then the test suite
    python3 dev.py package [folder|tar|deb|all]   the packaged app and installers, into dist/
    python3 dev.py wheelhouse    the cpu runtime's wheels, into build/wheelhouse/ (the runtime test's input)

Both create `.venv/` beside this file on first use and install the project with the pinned
dependency tree (requirements/constraints.txt); they reinstall only when pyproject.toml or the
constraints change. Only the standard library is used here, so a bare Python 3.10+ suffices.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".hypersd-installed"
INSTALL_INPUTS = (ROOT / "pyproject.toml", ROOT / "requirements" / "constraints.txt")
# Reference code the tests compare the app against, installed without its dependencies: spandrel (the upscaler
# architectures, tests/engine/test_upscalers.py) asks for torchvision, which only architectures the tests do not
# load import, and PyPI's torchvision build does not load with the CPU torch (transformers would then fail on it).
TEST_REFERENCES = ("spandrel==0.4.2",)


def venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def install_fingerprint() -> str:
    digest = hashlib.sha256(sys.version.encode())
    for path in INSTALL_INPUTS:
        digest.update(path.read_bytes())
    digest.update(" ".join(TEST_REFERENCES).encode())
    return digest.hexdigest()


def ensure_environment() -> Path:
    python = venv_python()
    if not python.exists():
        print(f"dev.py: creating {VENV.relative_to(ROOT)}/", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = install_fingerprint()
    if not STAMP.exists() or STAMP.read_text() != fingerprint:
        print("dev.py: installing the project and its pinned dependencies (first run: a few minutes)", flush=True)
        pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
        subprocess.run([*pip, "install", "--quiet", "--upgrade", "pip"], check=True)
        subprocess.run(
            [*pip, "install", "--quiet", "-c", str(INSTALL_INPUTS[1]), "-e", f"{ROOT}[dev]"],
            check=True,
        )
        subprocess.run([*pip, "install", "--quiet", "--no-deps", *TEST_REFERENCES], check=True)
        STAMP.write_text(fingerprint)
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test", "setup", "package", "wheelhouse"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    python = ensure_environment()
    if command == "setup":
        return 0
    if command == "run":
        return subprocess.call([str(python), "-m", "hypersd_desktop", *rest], cwd=ROOT)
    if command == "wheelhouse":
        return subprocess.call([str(python), str(ROOT / "tests" / "wheelhouse.py"), *rest], cwd=ROOT)
    if command == "package":
        return subprocess.call([str(python), str(ROOT / "installer" / "build.py"), *rest], cwd=ROOT)
    bindir = python.parent
    lint = subprocess.call([str(bindir / "lint-imports"), "--no-cache"], cwd=ROOT)
    if lint != 0:
        print("dev.py: the layer contracts in pyproject.toml are broken (see above)")
        return lint
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    status = subprocess.call([str(python), "-m", "pytest", *rest], cwd=ROOT, env=env)
    if status < 0:  # a crash, possibly after every test passed (at interpreter exit)
        print(f"dev.py: the test process died from signal {-status}; the run counts as failed")
        return 128 - status
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
