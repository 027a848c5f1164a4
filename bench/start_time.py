"""Time from launch to a window that takes input: the packaged app against the source run.

    python bench/start_time.py --frozen dist/hypersd-desktop/hypersd-desktop [--runs 5]

Each program is started with HYPERSD_QUIT_WHEN_SHOWN: once its event loop has shown the window
it prints a line and quits; the time is from launch to that line. "Cold" drops the page cache first (Linux, as
root; otherwise the first run stands for it), "warm" is the median of --runs runs after it. The
source run is `python3 dev.py run`, the README's command. Same machine, same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def launch(command: list[str], env: dict[str, str]) -> float:
    """Seconds until the program says its window is shown (it then quits; its exit is not timed)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    for line in process.stdout:
        if "window shown" in line:
            elapsed = time.perf_counter() - started
            break
    else:
        raise RuntimeError(f"{command[0]} exited without showing its window")
    process.wait(60)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frozen", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HYPERSD_HOME": home, "HYPERSD_QUIT_WHEN_SHOWN": "1",
               "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
        programs = {"packaged app": [str(args.frozen.resolve())], "python3 dev.py run": [sys.executable, "dev.py", "run"]}
        launch(programs["packaged app"], env)  # first start: creates the data folders for both
        for name, command in programs.items():
            dropped = drop_caches()
            cold = launch(command, env)
            warm = statistics.median(launch(command, env) for _ in range(args.runs))
            label = "cold (page cache dropped)" if dropped else "first run"
            print(f"{name:20} {label}: {cold:5.2f} s   warm (median of {args.runs}): {warm:5.2f} s")


if __name__ == "__main__":
    main()
