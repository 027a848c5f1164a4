"""Which device to run on and in which precision (torch side of the engine)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.vocab import Architecture, Device, DType

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Placement:
    """Device, the dtype of the UNet and text encoders, and the dtype the VAE decodes in."""

    device: str
    dtype: str
    vae_dtype: str


def available_devices() -> list[str]:
    devices = []
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    devices.append("cpu")
    return devices


def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 arithmetic (AVX512-BF16 or AMX), which makes bf16 faster than fp32."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        flags = cpuinfo.read_text(encoding="utf-8", errors="ignore")
        return "avx512_bf16" in flags or "amx_bf16" in flags
    return torch.backends.cpu.get_cpu_capability() in ("AVX512_BF16", "AMX")


def cuda_supports_bf16() -> bool:
    """True where the GPU has native bf16 arithmetic (compute capability 8.0 on: Ampere and later)."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)


def choose_device(requested: str) -> str:
    available = available_devices()
    if requested == Device.AUTO:
        return available[0]
    if requested not in available:
        raise InputError(
            f"The {requested.upper()} device is not available on this machine; available: "
            f"{', '.join(available)}. Choose auto or one of those."
        )
    return requested


def choose_placement(requested_device: str, requested_dtype: str, architecture: str, safe_fp16_vae: bool,
                     native_bf16: bool = False) -> Placement:
    """The device asked for, if this machine has it, and `placement_on` it."""
    return placement_on(choose_device(requested_device), requested_dtype, architecture, safe_fp16_vae, native_bf16)


def placement_on(device: str, requested_dtype: str, architecture: str, safe_fp16_vae: bool,
                 native_bf16: bool = False) -> Placement:
    """The dtype policy per device.

    CUDA: fp16; the SDXL VAE overflows in fp16, so unless it is the fp16-safe one (or the run is in bf16) it
    decodes in bf16 where the GPU has native bf16 (`native_bf16`: Ampere and later), whose range is fp32's, and
    in fp32 elsewhere. MPS: fp16 for the UNet and text encoders, the VAE in fp32 (fp16 VAE decodes on MPS give
    black or NaN images); bf16 only when asked. CPU: fp32, or bf16 when asked (fast only on CPUs with native
    bf16); fp16 on the CPU is refused (slow and not supported by every kernel).
    """
    if requested_dtype == DType.AUTO:
        dtype = DType.FP16 if device in (Device.CUDA, Device.MPS) else DType.FP32
    else:
        dtype = requested_dtype
    if device == Device.CPU and dtype == DType.FP16:
        raise InputError("fp16 is not supported on the CPU; use fp32, or bf16 on a CPU with bf16 support.")
    if dtype == DType.FP16 and device == Device.MPS:
        vae_dtype = DType.FP32
    elif dtype == DType.FP16 and architecture == Architecture.SDXL and not safe_fp16_vae:
        vae_dtype = DType.BF16 if native_bf16 and device == Device.CUDA else DType.FP32
    else:
        vae_dtype = dtype
    return Placement(device=device, dtype=dtype, vae_dtype=vae_dtype)


# The parts whose convolution weights are kept channels_last (NHWC), per device, by measurement: on an H200 an SD1.5
# UNet step replayed as a CUDA graph took 7.6 ms channels_last against 9.4 ms, and the SDXL VAE decode was slower
# so (bench/parts.py measures each part both ways). The ControlNet and the VAE stay as loaded until measured.
CHANNELS_LAST = {Device.CUDA: frozenset({"unet"})}


def channels_last_parts(device: str) -> frozenset[str]:
    return CHANNELS_LAST.get(device, frozenset())


def weights_layout(module: torch.nn.Module) -> str:
    """"channels_last" where the module's convolution weights are laid out so, else "contiguous"."""
    for parameter in module.parameters():
        if parameter.dim() == 4 and parameter.shape[-1] * parameter.shape[-2] > 1 and parameter.shape[1] > 1:
            channels_last = parameter.is_contiguous(memory_format=torch.channels_last)
            return "channels_last" if channels_last and not parameter.is_contiguous() else "contiguous"
    return "contiguous"


def lay_out(module: torch.nn.Module, channels_last: bool) -> torch.nn.Module:
    """`module` with its 4-d weights channels_last, or contiguous; in place."""
    return module.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def free_memory(device: str) -> int | None:
    """Bytes a run could still allocate on `device`: free device memory (within the process's share, where one
    is set) plus what torch's cache holds unused on CUDA; the recommended working set less what is allocated on
    MPS; available RAM on the CPU."""
    if device == Device.CUDA:
        free, total = torch.cuda.mem_get_info()
        reserved = torch.cuda.memory_reserved()
        share = torch.cuda.get_per_process_memory_fraction() * total
        return max(0, min(free, int(share) - reserved)) + reserved - torch.cuda.memory_allocated()
    if device == Device.MPS:
        recommended = getattr(torch.mps, "recommended_max_memory", None)
        return recommended() - torch.mps.current_allocated_memory() if recommended else None
    try:
        import psutil
    except ImportError:
        return None
    return psutil.virtual_memory().available


def module_bytes(module: torch.nn.Module | None) -> int:
    """Bytes of a module's weights and buffers, wherever they are."""
    if module is None:
        return 0
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


def memory_in_use(device: str) -> int | None:
    """Bytes the engine holds now: device memory on CUDA/MPS, this process's resident memory on the CPU."""
    if device == Device.CUDA:
        return torch.cuda.memory_allocated()
    if device == Device.MPS:
        return torch.mps.current_allocated_memory()
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss


def release_cached(device: str) -> None:
    """Hand the memory torch caches but no tensor uses back to the device, so one large allocation can have it."""
    if device == Device.CUDA:
        torch.cuda.empty_cache()
    elif device == Device.MPS:
        torch.mps.empty_cache()


@dataclass(frozen=True)
class Misfit:
    """How a state dict fails to fit a module: the names it lacks, those the module does not have, and those of
    another shape."""

    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    misshapen: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.misshapen)

    def counts(self) -> str:
        return (f"{len(self.missing)} missing, {len(self.unexpected)} unexpected and {len(self.misshapen)} "
                "misshapen weights")


def built_with(make: Callable[[], torch.nn.Module], state: dict[str, torch.Tensor], dtype: torch.dtype,
               device: str | torch.device = "cpu") -> tuple[torch.nn.Module | None, Misfit]:
    """`make()`'s module holding `state`'s weights, in `dtype` on `device`, and how `state` fits it; the module is
    None where `state` does not fit (its weights were never set).

    The module is made on the meta device, so no random weights are made first: a full-size module built the
    plain way is made in fp32 and initialised (the SDXL UNet: 10 GB and seconds), filled, then converted. Each
    weight is copied in once, converted to `dtype` on the way. Only for modules whose buffers all come from
    `state` (diffusers' UNets, VAEs and ControlNets have none)."""
    with torch.device("meta"):
        module = make()
    shapes = {key: tuple(tensor.shape) for key, tensor in module.state_dict().items()}
    misfit = Misfit(tuple(sorted(shapes.keys() - state.keys())), tuple(sorted(state.keys() - shapes.keys())),
                    tuple(sorted(key for key in shapes.keys() & state.keys() if tuple(state[key].shape) != shapes[key])))
    if misfit:
        return None, misfit
    module = module.to(dtype=dtype).to_empty(device=device)
    with torch.no_grad():
        module.load_state_dict(state)
    return module, misfit
