"""Upscaler models (engine/upscalers.py, upscaler_files.py, upscaler_nets.py): every key layout people's files have,
checked against spandrel (chaiNNer's model loader, the reference ComfyUI uses) on the same weights; tiles against
the whole picture; the files the app does not run named."""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from tests.tiny_models import save_upscaler, upscaler_state

# (layout, scale): ESRGAN's own layout at each scale it has, Real-ESRGAN's x4plus and x2plus (pixel-unshuffled),
# BSRGAN's, the Compact models, SPAN (normalised or not) and RealPLKSR (with a pixel shuffle or DySample, group or
# layer norms; DySample samples in three groups at odd scales)
LAYOUTS = [("esrgan", 1), ("basicsr", 1), ("compact", 1), ("span", 1), ("plksr", 1),  # 1×: restorations
           ("esrgan", 4), ("esrgan", 2), ("esrgan", 8), ("basicsr", 4), ("basicsr", 2), ("bsrgan", 4),
           ("compact", 4), ("compact", 2), ("span", 4), ("span", 2), ("span-raw", 4), ("plksr", 4), ("plksr", 2),
           ("plksr-dysample", 4), ("plksr-dysample", 3), ("plksr-layernorm", 2), ("dat", 4), ("dat", 2),
           ("dat-light", 3), ("dat-tall", 4), ("hat", 4), ("hat", 2), ("hat-plain", 3), ("swinir", 4), ("swinir", 3),
           ("swinir-light", 2), ("swinir-real", 4), ("swinir-real", 2)]
REFERENCE = {"esrgan": "esrgan", "basicsr": "esrgan", "bsrgan": "esrgan", "compact": "compact", "span": "span",
             "span-raw": "span", "plksr": "plksr", "plksr-dysample": "plksr", "plksr-layernorm": "plksr",
             "dat": "dat", "dat-light": "dat", "dat-tall": "dat", "hat": "hat", "hat-plain": "hat", "swinir": "swinir",
             "swinir-light": "swinir", "swinir-real": "swinir"}
WHOLE_TILE = ("plksr", "plksr-dysample", "dat", "dat-light", "dat-tall")  # in larger tiles
FP32 = (*WHOLE_TILE, "hat", "hat-plain", "swinir", "swinir-light", "swinir-real")  # on CUDA too


@pytest.fixture
def spandrel():
    """spandrel's ESRGAN, Compact, SPAN, PLKSR, DAT, HAT and SwinIR architectures. Its package's `__init__` imports
    all, some of them torchvision (which the tests' environment leaves out), so the package is entered without it."""
    spec = importlib.util.find_spec("spandrel")
    assert spec is not None, "spandrel is installed by dev.py (TEST_REFERENCES)"
    before = set(sys.modules)
    shell = types.ModuleType("spandrel")
    shell.__path__ = list(spec.submodule_search_locations)
    sys.modules["spandrel"] = shell
    try:
        from spandrel.architectures.Compact import CompactArch
        from spandrel.architectures.DAT import DATArch
        from spandrel.architectures.ESRGAN import ESRGANArch
        from spandrel.architectures.HAT import HATArch
        from spandrel.architectures.PLKSR import PLKSRArch
        from spandrel.architectures.SPAN import SPANArch
        from spandrel.architectures.SwinIR import SwinIRArch

        yield {"compact": CompactArch(), "esrgan": ESRGANArch(), "span": SPANArch(), "plksr": PLKSRArch(),
               "dat": DATArch(), "hat": HATArch(), "swinir": SwinIRArch()}
    finally:
        for name in set(sys.modules) - before:
            del sys.modules[name]


@pytest.mark.parametrize(("layout", "scale"), LAYOUTS)
def test_every_layout_runs_as_spandrel_runs_it(layout, scale, spandrel, tmp_path):
    from hypersd_desktop.engine.inspect import inspect_file
    from hypersd_desktop.engine.upscalers import load_upscaler

    path = save_upscaler(tmp_path / f"{layout}-x{scale}.safetensors", layout, scale=scale, blocks=2)
    info = inspect_file(path)
    assert (info.kind, info.architecture) == ("upscaler", None)
    net, read = load_upscaler(path)
    assert read.scale == scale and info.format == read.description
    assert read.half_ok == (layout not in FP32) and read.whole_tile == (layout in WHOLE_TILE)
    reference = spandrel[REFERENCE[layout]].load(load_file(str(path)))
    assert reference.scale == scale
    picture = torch.rand(1, 3, 21, 34, generator=torch.Generator().manual_seed(3))  # odd sides: x2plus pads them
    with torch.no_grad():
        ours, theirs = net(picture), reference.model.eval()(picture)
    assert ours.shape == theirs.shape == (1, 3, 21 * scale, 34 * scale)
    assert (ours - theirs).abs().max().item() < 1e-5
    assert ours.std().item() > 0.01  # the weights do something: a layout read wrong would not match


@pytest.mark.parametrize("layout", ["esrgan", "basicsr", "compact", "span", "plksr-dysample", "plksr-layernorm"])
def test_tiles_make_the_picture_the_whole_run_makes(layout):
    """Each tile reads a margin around it and keeps its middle, so where the margin is wider than what an output
    pixel sees (a small model's few layers here), the tiled picture is the whole run's, to the byte. (RealPLKSR's
    group norms take their statistics from what they are given, so with them a tile is not the whole run's.)"""
    from hypersd_desktop.engine.upscaler_files import canonical_names, upscaler_layout
    from hypersd_desktop.engine.upscaler_nets import build_upscaler
    from hypersd_desktop.engine.upscalers import run_tiled

    state = upscaler_state(layout, scale=2 if layout == "basicsr" else 4, blocks=1)
    read = upscaler_layout({key: tuple(tensor.shape) for key, tensor in state.items()})
    net = build_upscaler(read, {name: state[key] for name, key in canonical_names(state).items()})
    picture = torch.rand(1, 3, 45, 62, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        whole = run_tiled(net, read.scale, picture, tile=1000)
        tiled = run_tiled(net, read.scale, picture, tile=16, margin=24)
    assert whole.shape == (45 * read.scale, 62 * read.scale, 3)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


def test_enlarge_runs_the_model_until_the_size_is_covered(tmp_path):
    from hypersd_desktop.core.errors import CancelledError, ModelFormatError
    from hypersd_desktop.core.progress import CancelToken
    from hypersd_desktop.engine.upscalers import Upscalers, passes_to_cover

    path = save_upscaler(tmp_path / "2x.safetensors", "compact", scale=2)
    upscalers = Upscalers()
    told = []
    picture = Image.new("RGB", (40, 30), (200, 60, 20))
    made = upscalers.enlarge(path, picture, (100, 70), on_progress=lambda done, total: told.append((done, total)))
    assert made.size == (160, 120)  # ×2 twice: 80 × 60 does not cover 100 × 70
    assert told == [(1, 2), (2, 2)]
    told.clear()
    wide = Image.new("RGB", (300, 40), (20, 60, 200))  # two tiles, then three in the second pass (600 × 80)
    assert upscalers.enlarge(path, wide, (1200, 160), on_progress=lambda *told_now: told.append(told_now)).size == \
        (1200, 160)
    assert told == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    assert passes_to_cover((512, 512), (768, 768), 4) == 1 and passes_to_cover((512, 512), (512, 512), 4) == 0
    assert passes_to_cover((512, 512), (2048, 2048), 2) == 2
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        upscalers.enlarge(path, picture, (100, 70), cancel=token)
    with pytest.raises(ModelFormatError, match="is gone .* choose another in the Upscaler list"):
        upscalers.enlarge(tmp_path / "moved.safetensors", picture, (100, 70))


def test_a_1x_model_restores_the_picture_once_and_lanczos_enlarges_it(tmp_path):
    """A 1× model (a restoration: 1x-ITF-SkinDiffDetail-Lite, 1x_NMKD-…) does not enlarge: it runs once, as A1111
    runs one, and its picture is what the caller fits to the size; as an upscaler it is imported and offered."""
    from hypersd_desktop.engine.inspect import inspect_file
    from hypersd_desktop.engine.upscalers import Upscalers, load_upscaler, passes_to_cover

    path = save_upscaler(tmp_path / "1x-Restore.safetensors", "compact", scale=1)
    info = inspect_file(path)
    assert (info.kind, info.format) == ("upscaler", "Real-ESRGAN Compact ×1 (1 convolution)")
    net, layout = load_upscaler(path)
    picture = Image.fromarray(np.random.default_rng(2).integers(0, 256, (30, 40, 3), dtype=np.uint8))
    told = []
    made = Upscalers().enlarge(path, picture, (80, 60), on_progress=lambda *now: told.append(now))
    assert made.size == (40, 30) and told == [(1, 1)]
    with torch.no_grad():
        expected = net(torch.from_numpy(np.array(picture)).permute(2, 0, 1)[None].float() / 255)
    expected = (expected[0].permute(1, 2, 0).clamp(0, 1) * 255).round().numpy()
    assert np.abs(np.asarray(made, np.int16) - expected).max() <= 1
    assert not np.array_equal(np.asarray(made), np.asarray(picture))  # it did something
    assert passes_to_cover((40, 30), (40, 30), 1) == passes_to_cover((40, 30), (400, 300), 1) == 1


class _ShortOfMemory(torch.nn.Module):
    """An upscaler on a device with room for tiles of `room` pixels a side only: larger ones run out of memory, as
    CUDA says it (the device's memory is the one thing not here)."""

    def __init__(self, net: torch.nn.Module, room: int) -> None:
        super().__init__()
        self.net, self.room, self.sides = net, room, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sides.append(max(x.shape[-2:]))
        if self.sides[-1] > self.room:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.net(x)


def test_a_pass_that_runs_out_of_memory_runs_again_in_smaller_tiles(caplog):
    """As ComfyUI's upscaling does: tiles half as large until they fit, down to 64 pixels; the picture is the one
    smaller tiles make, the progress counts the tiles that ran, and a device too small even then says so."""
    from hypersd_desktop.engine.upscaler_files import canonical_names, upscaler_layout
    from hypersd_desktop.engine.upscaler_nets import build_upscaler
    from hypersd_desktop.core.errors import OutOfMemoryError
    from hypersd_desktop.engine.upscalers import MARGIN, run_passes, run_tiled

    state = upscaler_state("compact", scale=2, blocks=1)
    layout = upscaler_layout({key: tuple(tensor.shape) for key, tensor in state.items()})
    net = build_upscaler(layout, {name: state[key] for name, key in canonical_names(state).items()})
    picture = Image.effect_mandelbrot((300, 200), (-2, -1.5, 1, 1.5), 40).convert("RGB")
    short = _ShortOfMemory(net, room=128 + 2 * MARGIN)  # 256-pixel tiles do not fit; 128 do
    told = []
    made = run_passes(short, layout, picture, 2, "cpu", torch.float32, on_progress=lambda *now: told.append(now))
    pixels = torch.from_numpy(np.asarray(picture, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        once = run_tiled(net, 2, pixels, tile=128)
        twice = run_tiled(net, 2, torch.from_numpy(once.astype(np.float32) / 255).permute(2, 0, 1)[None], tile=128)
    assert made.size == (1200, 800) and np.array_equal(np.asarray(made), twice)
    assert max(short.sides[1:]) <= 128 + 2 * MARGIN  # after the first tile ran out, none larger was tried
    assert told[-1] == (6 + 20, 6 + 20)  # 3 × 2 tiles of 128, then 5 × 4 in the picture twice as large
    assert "ran out of cpu memory in tiles of 256 pixels; trying 128" in caplog.text
    with pytest.raises(OutOfMemoryError, match=r"The upscaler \(Real-ESRGAN Compact ×2 \(1 convolution\)\) ran out of "
                       r"the computer's memory even in tiles of 64 pixels\. Choose Lanczos"):
        run_passes(_ShortOfMemory(net, room=32), layout, picture, 1, "cpu", torch.float32)


def test_a_basicsr_training_state_runs_its_ema_weights(tmp_path):
    """BasicSR saves `params` and `params_ema` side by side; a file converted from it whole keeps both."""
    from hypersd_desktop.engine.upscalers import load_upscaler

    ema, plain = upscaler_state("basicsr", seed=1), upscaler_state("basicsr", seed=2)
    path = tmp_path / "RealESRGAN_x4plus.safetensors"
    save_file({**{f"params_ema.{k}": v for k, v in ema.items()}, **{f"params.{k}": v for k, v in plain.items()}},
              str(path))
    net, layout = load_upscaler(path)
    assert layout.scale == 4 and torch.equal(net.conv_first.weight, ema["conv_first.weight"])


def test_files_that_are_no_upscaler_the_app_runs_are_refused(tmp_path):
    from hypersd_desktop.core.errors import ModelFormatError
    from hypersd_desktop.engine.inspect import inspect_file
    from hypersd_desktop.engine.upscalers import load_upscaler

    wrong = upscaler_state("basicsr")
    wrong["conv_last.weight"] = wrong["conv_last.weight"][:, :4].contiguous()  # a layer that does not fit the rest
    plus = upscaler_state("esrgan")
    plus["model.1.sub.0.RDB1.conv1x1.weight"] = torch.zeros(8, 8, 1, 1)  # ESRGAN+
    for name, state in (("wrong", wrong), ("plus", plus)):
        path = tmp_path / f"{name}.safetensors"
        save_file(state, str(path))
        info = inspect_file(path)
        assert (info.kind, info.format) == ("unknown", "ESRGAN variant (ESRGAN+)"), name
        with pytest.raises(ModelFormatError, match="is no upscaler this app runs"):
            load_upscaler(path)
    uneven = upscaler_state("dat", heads=3)  # 32 channels do not part into three heads
    short = upscaler_state("dat")
    del short["layers.1.blocks.1.ffn.fc2.weight"]
    denoiser = {name: tensor for name, tensor in upscaler_state("swinir-light", scale=2).items()  # SwinIR's 1×
                if not name.startswith("upsample.")}
    denoiser.update({"conv_last.weight": torch.zeros(3, 32, 3, 3), "conv_last.bias": torch.zeros(3)})
    odd = upscaler_state("hat", window=4)
    odd["relative_position_index_OCA"] = torch.zeros(16, 25, dtype=torch.long)  # a 5-pixel window around a 4-pixel
    for name, state in (("uneven-dat", uneven), ("short-dat", short), ("odd-hat", odd),
                        ("uneven-hat", upscaler_state("hat", heads=3)),
                        ("uneven-swinir", upscaler_state("swinir", heads=3)),
                        ("1x-swinir", denoiser)):
        path = tmp_path / f"{name}.safetensors"
        save_file(state, str(path))
        assert inspect_file(path).format == ("upscaler of another architecture (Swin2SR) or a DAT, HAT or SwinIR "
                                             "variant"), name
        with pytest.raises(ModelFormatError,
                           match=r"is no upscaler this app runs \(ESRGAN, .* DAT, HAT or SwinIR, in safetensors\)"):
            load_upscaler(path)


def test_an_imported_upscaler_is_listed_for_either_model(tmp_path, app_home):
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.core.vocab import ImportStatus, ModelKind
    from hypersd_desktop.models.library import ModelLibrary

    folder = tmp_path / "ESRGAN"
    save_upscaler(folder / "4x-UltraSharp.safetensors")
    save_upscaler(folder / "2x-SPAN.safetensors", "span", scale=2)
    (folder / "RealESRGAN_x4plus.pth").write_bytes(b"\x80\x02}q\x00.")  # a pickle: refused, as every pickle is
    library = ModelLibrary(AppPaths.default())
    try:
        items = {item.path.rsplit("/", 1)[-1]: item for item in library.import_path(folder)}
        assert items["4x-UltraSharp.safetensors"].status == items["2x-SPAN.safetensors"].status == \
            ImportStatus.IMPORTED
        assert items["RealESRGAN_x4plus.pth"].status == ImportStatus.REFUSED
        models = library.registry.list(ModelKind.UPSCALER)
        assert sorted((model.name, model.architecture) for model in models) == [("2x-SPAN", None),
                                                                                ("4x-UltraSharp", None)]
    finally:
        library.close()


def test_a_model_reading_the_whole_tile_runs_in_larger_tiles(tmp_path):
    """RealPLKSR's group norms normalise over the tile they see, and DAT's channels attend across all of it: they run
    in 512-pixel tiles (ComfyUI's), others in 256 (HAT too: its channel attention, pooled over the tile, is added at a
    hundredth, and its cross-attention's memory grows fast with the tile)."""
    from hypersd_desktop.engine.upscalers import Upscalers

    picture = Image.new("RGB", (300, 40), (20, 60, 200))
    for layout, tiles in (("plksr", 1), ("plksr-layernorm", 2), ("span", 2), ("dat", 1), ("hat", 2)):
        told = []
        path = save_upscaler(tmp_path / f"{layout}.safetensors", layout, scale=2)
        Upscalers().enlarge(path, picture, (600, 80), on_progress=lambda *now: told.append(now))
        assert told[-1] == (tiles, tiles), layout
