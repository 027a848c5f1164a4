"""Build the packaged app and its installers.

    python installer/build.py [folder|tar|deb|nsis|dmg|all] [--out DIR] [--quick] [--reuse]
                              [--python-dist ARCHIVE] [--embed-runtime VARIANT [--find-links DIR]]

`folder` freezes the app (PyInstaller, one folder, `installer/hypersd_desktop.spec`) into
DIR/hypersd-desktop/; `tar` adds HyperSD-Desktop-<version>-linux-<arch>.tar.gz (the folder, a
.desktop file and the icon); `deb` adds hypersd-desktop_<version>_<arch>.deb (the folder in
/opt/hypersd-desktop, the command in /usr/bin, the menu entry and the icon); `nsis` adds the
Windows installer HyperSD-Desktop-Setup-<version>.exe (makensis); `dmg` puts the macOS .app
in HyperSD-Desktop-<version>-macos-<arch>.dmg; `all` builds the ones for this platform. DIR
defaults to dist/. Run it with the project's environment (`python3 dev.py package` uses it).

The frozen app has no torch: generation runs in a compute runtime the app installs on first start
(hypersd_desktop/runtime/). The folder carries what that takes in runtime/: uv and the app's
own wheel; `--python-dist ARCHIVE` adds a Python to build it on, and `--embed-runtime cpu`
every wheel of that variant, for machines with no internet (see README, "Install").
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypersd_desktop import __version__  # noqa: E402 - after the path above
from hypersd_desktop.core.files import folder_size  # noqa: E402

NAME = "hypersd-desktop"
ICON = ROOT / "resources" / "hypersd-desktop.png"
# What the frozen Qt needs from the system on Debian and Ubuntu (the xcb platform plugin's libraries).
DEB_DEPENDS = ("libc6 (>= 2.31), libegl1, libgl1, libfontconfig1, libfreetype6, libdbus-1-3, libglib2.0-0 | libglib2.0-0t64, "
               "libxkbcommon0, libxkbcommon-x11-0, libx11-6, libx11-xcb1, libxcb1, libxcb-cursor0, libxcb-icccm4, "
               "libxcb-image0, libxcb-keysyms1, libxcb-randr0, libxcb-render-util0, libxcb-shape0, libxcb-xfixes0, "
               "libxcb-xinerama0, libxcb-xkb1")
DESKTOP_ENTRY = f"""[Desktop Entry]
Type=Application
Name=HyperSD Desktop
GenericName=Image Generator
Comment=Generate images with Stable Diffusion and Hyper-SD in a few steps
Exec={NAME} %F
Icon={NAME}
Terminal=false
Categories=Graphics;2DGraphics;RasterGraphics;
MimeType=image/png;image/jpeg;image/webp;
Keywords=stable diffusion;image;generator;AI;
StartupWMClass={NAME}
"""


MAN_PAGE = f""".TH {NAME.upper()} 1 "" "{__version__}" "User Commands"
.SH NAME
{NAME} \\- desktop image generator for Stable Diffusion with Hyper-SD
.SH SYNOPSIS
.B {NAME}
.RI [ command ] " " [ options ]
.SH DESCRIPTION
Without a command, opens the window. Commands: generate, models, gallery, batch, inspect;
.B {NAME} command --help
describes each.
"""
# A bundled app in /opt carries its own Python, Qt and libraries: these tags describe that layout,
# not a defect (Debian's policy is for packages built from the archive).
LINTIAN_OVERRIDES = ("dir-or-file-in-opt [opt/*]", "embedded-library *", "custom-library-search-path *",
                     "shared-library-lacks-prerequisites *", "library-not-linked-against-libc *",
                     "hardening-no-pie *", "missing-depends-on-sensible-utils *",
                     # auditwheel's vendored libraries stay as the wheels ship them: strip breaks them (strip_binaries)
                     "unstripped-binary-or-object [opt/hypersd-desktop/_internal/*.libs/*]")


def arch() -> tuple[str, str]:
    """(the tarball's architecture name, Debian's)."""
    machine = platform.machine().lower()
    return {"x86_64": ("x86_64", "amd64"), "amd64": ("x86_64", "amd64"),
            "aarch64": ("aarch64", "arm64"), "arm64": ("aarch64", "arm64")}.get(machine, (machine, machine))


def build_folder(out: Path) -> Path:
    """The frozen app in out/hypersd-desktop/."""
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(
            [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath", str(out),
             "--workpath", work, str(ROOT / "installer" / "hypersd_desktop.spec")],
            check=True, cwd=ROOT,
        )
    folder = out / NAME
    print(f"build: {folder} ({folder_size(folder) / 2**20:.0f} MiB)")
    return folder


def add_runtime_parts(folder: Path, python_dist: Path | None = None, embed: str | None = None,
                      find_links: tuple[Path, ...] = ()) -> Path:
    """folder/runtime/: what the app installs its compute runtime with (hypersd_desktop/runtime/): uv,
    the app's own wheel, and optionally a Python (a python-build-standalone `install_only` archive)
    and every wheel of one variant's lock for this platform (an offline install)."""
    from uv import find_uv_bin

    from hypersd_desktop.runtime.install import build_wheel
    from hypersd_desktop.runtime.locks import load_lock, locks_dir, this_platform

    runtime = folder / "runtime"
    shutil.rmtree(runtime, ignore_errors=True)
    runtime.mkdir(parents=True)
    uv = Path(find_uv_bin())
    shutil.copy2(uv, runtime / uv.name)
    wheel = build_wheel(ROOT, runtime)
    if python_dist is not None:
        with tarfile.open(python_dist) as archive:  # install_only archives hold one folder, python/
            archive.extractall(runtime, filter="tar")
        if not (runtime / "python").is_dir():
            raise SystemExit(f"build: {python_dist} has no python/ folder (use an install_only archive)")
    if embed:
        lock = load_lock(embed)
        if lock is None:
            raise SystemExit(f"build: no {embed} lock for {this_platform()} in {locks_dir()}")
        wheels = runtime / "wheels"
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes",
                   "--only-binary", ":all:", "-d", str(wheels), "-r", str(locks_dir() / f"{lock.name}.txt")]
        command += [arg for link in find_links for arg in ("--find-links", str(link))]
        # Without the lock's torch index first (pip asks an extra index for every package, and local wheels
        # may already hold torch's), then with it.
        if subprocess.run(command).returncode != 0:
            subprocess.run([*command, *(["--extra-index-url", lock.index] if lock.index else [])], check=True)
        (wheels / "VARIANT").write_text(embed, encoding="utf-8")
    print(f"build: {runtime.relative_to(folder.parent)}: uv, {wheel.name}"
          + (", Python" if python_dist else "") + (f", the {embed} runtime's wheels" if embed else "")
          + f" ({folder_size(runtime) / 2**20:.0f} MiB)")
    return runtime


def build_tar(folder: Path, out: Path) -> Path:
    target = out / f"HyperSD-Desktop-{__version__}-linux-{arch()[0]}.tar.gz"
    with tempfile.TemporaryDirectory() as staging:
        top = Path(staging) / f"HyperSD-Desktop-{__version__}"
        shutil.copytree(folder, top / NAME, symlinks=True)
        shutil.copy2(ICON, top / f"{NAME}.png")
        (top / f"{NAME}.desktop").write_text(DESKTOP_ENTRY.replace(f"Exec={NAME}", f"Exec=./{NAME}/{NAME}"),
                                             encoding="utf-8")
        (top / "README.txt").write_text(
            "HyperSD Desktop\n\nRun ./hypersd-desktop/hypersd-desktop. To add it to the menu, copy "
            f"{NAME}.desktop to ~/.local/share/applications/ with Exec= and Icon= set to full paths.\n"
            "Generation runs in a compute runtime (torch for this machine, a few GB) that is not bundled: until the\n"
            "app installs it itself, set Settings -> Worker Python to a Python with HyperSD Desktop installed.\n",
            encoding="utf-8")
        with tarfile.open(target, "w:gz") as archive:
            archive.add(top, arcname=top.name)
    print(f"build: {target} ({target.stat().st_size / 2**20:.0f} MiB)")
    return target


def build_deb(folder: Path, out: Path) -> Path:
    debian_arch = arch()[1]
    target = out / f"{NAME}_{__version__}_{debian_arch}.deb"
    with tempfile.TemporaryDirectory() as staging:
        root = Path(staging) / "root"
        shutil.copytree(folder, root / "opt" / NAME, symlinks=True)
        strip_binaries(root / "opt" / NAME)
        (root / "usr" / "bin").mkdir(parents=True)
        os.symlink(f"/opt/{NAME}/{NAME}", root / "usr" / "bin" / NAME)
        applications = root / "usr" / "share" / "applications"
        applications.mkdir(parents=True)
        (applications / f"{NAME}.desktop").write_text(DESKTOP_ENTRY, encoding="utf-8")
        icons = root / "usr" / "share" / "icons" / "hicolor" / "256x256" / "apps"
        icons.mkdir(parents=True)
        shutil.copy2(ICON, icons / f"{NAME}.png")
        docs = root / "usr" / "share" / "doc" / NAME
        docs.mkdir(parents=True)
        (docs / "copyright").write_text(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
            "Upstream-Name: HyperSD Desktop\n\nFiles: *\nCopyright: 2026 the HyperSD Desktop authors\n"
            "License: Apache-2.0\n On Debian systems the licence's text is in /usr/share/common-licenses/Apache-2.0.\n"
            " The bundled Python, Qt (LGPL-3), libheif and libde265 (LGPL-3, HEIC photos) and Python packages\n"
            " keep their own licences, included in /opt/hypersd-desktop.\n", encoding="utf-8")
        control = root / "DEBIAN"
        control.mkdir()
        installed_kib = folder_size(root) // 1024
        (control / "control").write_text(
            f"Package: {NAME}\nVersion: {__version__}\nArchitecture: {debian_arch}\n"
            f"Maintainer: HyperSD Desktop <hypersd-desktop@users.noreply.github.com>\n"
            f"Installed-Size: {installed_kib}\nDepends: {DEB_DEPENDS}\nSection: graphics\nPriority: optional\n"
            "Description: desktop image generator for Stable Diffusion with Hyper-SD\n"
            " Generates images with Stable Diffusion 1.5 and SDXL accelerated by\n"
            " Hyper-SD LoRAs in 1 to 8 steps, with a local gallery, model downloads\n"
            " and batch export. Generation runs in a separate compute runtime\n"
            " (torch for the machine), which is not part of this package.\n", encoding="utf-8")
        (docs / "changelog.gz").write_bytes(gzip.compress(
            f"{NAME} ({__version__}) unstable; urgency=medium\n\n  * Release {__version__}.\n\n"
            f" -- HyperSD Desktop <hypersd-desktop@users.noreply.github.com>  Mon, 30 Nov 2026 00:00:00 +0000\n".encode(),
            mtime=0))
        man = root / "usr" / "share" / "man" / "man1"
        man.mkdir(parents=True)
        (man / f"{NAME}.1.gz").write_bytes(gzip.compress(MAN_PAGE.encode(), mtime=0))
        overrides = root / "usr" / "share" / "lintian" / "overrides"
        overrides.mkdir(parents=True)
        (overrides / NAME).write_text("".join(f"{NAME}: {tag}\n" for tag in LINTIAN_OVERRIDES), encoding="utf-8")
        for path in root.rglob("*"):  # packages are root-owned; programs 755, libraries and data 644
            if not path.is_symlink():
                executable = path.is_dir() or (os.access(path, os.X_OK) and ".so" not in path.name)
                path.chmod(0o755 if executable else 0o644)
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(target)], check=True,
                       stdout=subprocess.DEVNULL)
    print(f"build: {target} ({target.stat().st_size / 2**20:.0f} MiB)")
    return target


def strip_binaries(folder: Path) -> None:
    """Debug symbols out of the bundled ELF files (a third of some libraries' size).

    Libraries that auditwheel vendored into a wheel (`numpy.libs/`, `pillow.libs/`, named `libfoo-<hash>.so`)
    are left alone: patchelf rewrote their headers, and `strip` makes them unloadable ("ELF load command
    address/offset not page-aligned": numpy's OpenBLAS failed so, and with it every command).
    """
    if shutil.which("strip") is None:
        print("build: no `strip` (binutils) here; the package keeps its debug symbols")
        return
    elves = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink() and not vendored_by_auditwheel(p)
             and p.read_bytes()[:4] == b"\x7fELF"]
    for chunk in range(0, len(elves), 200):
        subprocess.run(["strip", "--strip-unneeded", *map(str, elves[chunk:chunk + 200])], check=False,
                       stderr=subprocess.DEVNULL)


def vendored_by_auditwheel(path: Path) -> bool:
    return any(parent.name.endswith(".libs") for parent in path.parents) or bool(
        re.search(r"-[0-9a-f]{8}(-[0-9a-f]{8})?\.so", path.name))


def build_nsis(folder: Path, out: Path, quick: bool = False) -> Path:
    """The Windows installer (makensis). Built on Linux, the payload is the Linux folder: a stand-in
    that checks the script; the release workflow builds it on Windows with the Windows folder."""
    target = out / f"HyperSD-Desktop-Setup-{__version__}.exe"
    defines = [f"-DVERSION={__version__}", f"-DSOURCE={folder}", f"-DOUTFILE={target}", *(["-DQUICK"] if quick else [])]
    subprocess.run(["makensis", "-V2", *defines, str(ROOT / "installer" / "windows" / "hypersd-desktop.nsi")],
                   check=True)
    print(f"build: {target} ({target.stat().st_size / 2**20:.0f} MiB)")
    return target


def build_dmg(out: Path) -> Path:
    """The macOS disk image of the .app (hdiutil; macOS only). Signing and notarisation run when
    their credentials are in the environment (MACOS_SIGN_IDENTITY; NOTARY_PROFILE for notarytool)."""
    app = out / "HyperSD Desktop.app"
    identity = os.environ.get("MACOS_SIGN_IDENTITY")
    if identity:
        subprocess.run(["codesign", "--deep", "--force", "--options", "runtime", "--sign", identity, str(app)],
                       check=True)
    target = out / f"HyperSD-Desktop-{__version__}-macos-{arch()[0]}.dmg"
    subprocess.run(["hdiutil", "create", "-volname", "HyperSD Desktop", "-srcfolder", str(app), "-ov",
                    "-format", "UDZO", str(target)], check=True)
    if identity and os.environ.get("NOTARY_PROFILE"):
        subprocess.run(["xcrun", "notarytool", "submit", str(target), "--keychain-profile",
                        os.environ["NOTARY_PROFILE"], "--wait"], check=True)
        subprocess.run(["xcrun", "stapler", "staple", str(target)], check=True)
    print(f"build: {target} ({target.stat().st_size / 2**20:.0f} MiB)")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", default="all", choices=("folder", "tar", "deb", "nsis", "dmg", "all"))
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--quick", action="store_true", help="zlib instead of solid LZMA for the Windows installer")
    parser.add_argument("--reuse", action="store_true", help="package the app folder already in --out")
    parser.add_argument("--python-dist", type=Path, help="a python-build-standalone install_only archive of the "
                        "runtime's Python version to ship (default: the app downloads one with uv on first start)")
    parser.add_argument("--embed-runtime", metavar="VARIANT", help="ship every wheel of this runtime variant "
                        "(e.g. cpu): an installer for machines with no internet")
    parser.add_argument("--find-links", type=Path, action="append", default=[], metavar="DIR",
                        help="local wheels for --embed-runtime, besides the indexes")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    folder = out / NAME if args.reuse and (out / NAME).is_dir() else build_folder(out)
    parts = (args.python_dist, args.embed_runtime, tuple(args.find_links))
    add_runtime_parts(folder, *parts)
    if sys.platform == "darwin" and (out / "HyperSD Desktop.app").is_dir():
        add_runtime_parts(out / "HyperSD Desktop.app" / "Contents" / "Resources", *parts)
    linux, windows, macos = sys.platform.startswith("linux"), sys.platform == "win32", sys.platform == "darwin"
    if args.what == "tar" or (args.what == "all" and linux):
        build_tar(folder, out)
    if args.what == "deb" or (args.what == "all" and linux):
        build_deb(folder, out)
    if args.what == "nsis" or (args.what == "all" and windows):
        build_nsis(folder, out, args.quick)
    if args.what == "dmg" or (args.what == "all" and macos):
        build_dmg(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
