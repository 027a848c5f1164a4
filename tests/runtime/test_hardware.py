"""Hardware detection without torch: the probes' real output formats, and the variant chosen from them."""

from __future__ import annotations

import json

from hypersd_desktop.runtime.hardware import (
    Gpu, Hardware, detect, parse_cpuinfo, parse_cuda_version, parse_nvidia_smi, parse_windows_adapters, recommend,
)

OFFERED_LINUX = {"cuda": "cuda-driver>=13.0", "cpu": None}
OFFERED_WINDOWS = {"cpu": None}
OFFERED_MAC = {"mps": None}

NVIDIA_SMI_TABLE = """\
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 580.65.06              Driver Version: 580.65.06      CUDA Version: 13.0     |
|-----------------------------------------+------------------------+----------------------+
"""


def machine(**parts) -> Hardware:
    return Hardware(**{"system": "linux", "machine": "x86_64", "cpu": "Some CPU", "cores": 8, "memory_bytes": 16 * 2**30,
                       **parts})


def test_nvidia_smi_csv_and_table_are_read():
    gpus = parse_nvidia_smi("NVIDIA GeForce RTX 4090, 24564\nNVIDIA RTX A2000 12GB, 12282\n")
    assert [g.name for g in gpus] == ["NVIDIA GeForce RTX 4090", "NVIDIA RTX A2000 12GB"]
    assert gpus[0].memory_bytes == 24564 * 2**20
    assert parse_cuda_version(NVIDIA_SMI_TABLE) == (13, 0)
    assert parse_cuda_version("no driver") is None


def test_windows_display_adapters_leave_out_nvidia_and_the_basic_driver():
    listing = json.dumps([
        {"Name": "AMD Radeon RX 7800 XT", "AdapterRAM": 4293918720, "AdapterCompatibility": "Advanced Micro Devices, Inc."},
        {"Name": "NVIDIA GeForce RTX 3060", "AdapterRAM": 4293918720, "AdapterCompatibility": "NVIDIA"},
        {"Name": "Microsoft Basic Display Adapter", "AdapterRAM": None, "AdapterCompatibility": "(Standard display types)"},
    ])
    assert [g.name for g in parse_windows_adapters(listing)] == ["AMD Radeon RX 7800 XT"]
    one = json.dumps({"Name": "Intel(R) Arc(TM) Graphics", "AdapterRAM": 2147479552, "AdapterCompatibility": "Intel Corporation"})
    assert parse_windows_adapters(one)[0].name == "Intel(R) Arc(TM) Graphics"
    assert parse_windows_adapters("") == () and parse_windows_adapters("not json") == ()


def test_cpuinfo_flags_on_x86_and_arm():
    name, flags = parse_cpuinfo("processor\t: 0\nmodel name\t: AMD Ryzen 9 7950X\nflags\t\t: fpu sse2 avx avx2 avx512f\n")
    assert name == "AMD Ryzen 9 7950X" and {"avx2", "avx512f"} <= flags
    _, arm = parse_cpuinfo("processor\t: 0\nFeatures\t: fp asimd evtstrm aes\n")
    assert "neon" in arm


def test_a_new_enough_nvidia_driver_gets_cuda():
    choice = recommend(machine(nvidia=(Gpu("NVIDIA GeForce RTX 4090", 24 * 2**30),), cuda_driver=(13, 0)), OFFERED_LINUX)
    assert choice.variant == "cuda" and "RTX 4090" in choice.reason


def test_an_old_nvidia_driver_gets_the_cpu_and_is_told_to_update():
    choice = recommend(machine(nvidia=(Gpu("NVIDIA GeForce GTX 1080"),), cuda_driver=(12, 4)), OFFERED_LINUX)
    assert choice.variant == "cpu"
    assert any("12.4" in note and "13.0" in note and "driver" in note for note in choice.notes)


def test_apple_silicon_gets_mps_and_a_windows_amd_gpu_waits_for_directml():
    assert recommend(machine(system="macos", machine="arm64", apple_silicon=True), OFFERED_MAC).variant == "mps"
    amd = recommend(machine(system="windows", other_gpus=(Gpu("AMD Radeon RX 7800 XT"),)), OFFERED_WINDOWS)
    assert amd.variant == "cpu" and any("DirectML" in note for note in amd.notes)
    assert recommend(machine(system="windows", other_gpus=(Gpu("AMD Radeon"),)),
                     {"directml": None, "cpu": None}).variant == "directml"


def test_nothing_offered_says_so():
    assert recommend(machine(system="macos", machine="x86_64"), {}).variant == ""


def test_this_machine_is_detected_without_torch():
    import subprocess
    import sys

    found = detect()
    assert found.cores >= 1 and found.memory_bytes > 0
    assert found.describe()[-1].startswith(found.cpu or "CPU")
    check = ("import sys; from hypersd_desktop.runtime.hardware import detect; detect(); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6')))")
    assert subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_a_probe_that_writes_another_code_page_is_read_not_a_crash():
    """Windows tools write the system's OEM code page: an adapter name in it may not decode as this process reads."""
    import sys

    from hypersd_desktop.runtime.hardware import _run

    text = _run([sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'Radeon \\xff\\x81 Grafik\\n')"])
    assert text.startswith("Radeon ") and text.rstrip().endswith(" Grafik")
