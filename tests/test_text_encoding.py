"""Text the app reads and writes names its encoding: on Windows the default is the ANSI code page (cp1252, or
cp932 on a Japanese system), not UTF-8, and these tests run on Linux, where the default hides the difference.

Files are UTF-8 (JSON is by its standard). A program's output read as text replaces what does not decode,
so a tool writing another code page (Windows' own, for an adapter's name) cannot end a probe or an install.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for folder in ("hypersd_desktop", "installer") for p in (ROOT / folder).rglob("*.py"))
TEXT_FILE_CALLS = ("read_text", "write_text")
PROGRAM_CALLS = ("run", "Popen", "check_output")


def _keywords(call: ast.Call) -> dict[str, ast.expr]:
    return {keyword.arg: keyword.value for keyword in call.keywords if keyword.arg}


def _mode(call: ast.Call) -> str:
    mode = call.args[1] if len(call.args) > 1 else _keywords(call).get("mode")
    return mode.value if isinstance(mode, ast.Constant) and isinstance(mode.value, str) else "r"


def unnamed_encodings(source: str) -> list[tuple[int, str]]:
    """(line, call) for each text file read or written, or program output read as text, with no encoding named
    (for program output: no encoding and no `errors`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        keywords = _keywords(node)
        if "encoding" in keywords:
            continue
        if name in TEXT_FILE_CALLS:
            found.append((node.lineno, name))
        elif name == "open" and isinstance(node.func, ast.Name) and "b" not in _mode(node):
            found.append((node.lineno, "open"))
        elif name in PROGRAM_CALLS and ({"text", "universal_newlines"} & set(keywords)) and "errors" not in keywords:
            found.append((node.lineno, f"{name}(text=True)"))
    return found


def test_the_check_finds_what_it_looks_for():
    source = ('p.read_text()\np.write_text(s, encoding="utf-8")\nopen(f)\nopen(f, "rb")\nopen(f, "w", encoding="utf-8")\n'
              'subprocess.run(c, text=True)\nsubprocess.run(c, text=True, errors="replace")\nsubprocess.run(c)\n')
    assert unnamed_encodings(source) == [(1, "read_text"), (3, "open"), (6, "run(text=True)")]


def test_every_text_file_and_program_output_names_its_encoding():
    assert len(SOURCES) > 50
    unnamed = [f"{path.relative_to(ROOT)}:{line} {call}" for path in SOURCES
               for line, call in unnamed_encodings(path.read_text(encoding="utf-8"))]
    assert unnamed == []
