"""Midjourney: the images its web site lets one download hold the prompt as it was typed, with its parameters and
the job's id after it, as PNG text `Description` ("a fox in snow --ar 2:1 --stylize 80 --v 6 Job ID: 0a1b…"), and
the same as the XMP packet's `dc:description`; `Author` is the account that made it. Images saved from Discord hold
nothing.

A prompt may start with image prompts (addresses) and ends where the first `--parameter` starts; `--no` is what
the picture should not have (the negative prompt), `--seed` its seed, `--v` or `--niji` the model.
"""

from __future__ import annotations

import re

from hypersd_desktop.gallery.formats.common import ImageMetadata, to_int
from hypersd_desktop.gallery.formats.mochi import xmp_description

_JOB = re.compile(r"Job ID:\s*([0-9a-fA-F][0-9a-fA-F-]{7,})\s*$")  # searched from its words: no run of spaces first
_PARAMETER = re.compile(r"(?:^|\s)--([a-zA-Z][a-zA-Z0-9-]*)(?=\s|$)")
_IMAGE_PROMPTS = re.compile(r"^(?:<?https?://\S+?>?\s+)+")
PARAMETERS_FIELD = "Midjourney parameters"  # the line of parameters as written, among an image's other fields
TAKEN = ("no", "seed", "sameseed")  # the parameters a reading takes: the negative prompt and the seed


def midjourney_text(chunks: dict[str, str]) -> str | None:
    """The prompt line Midjourney wrote, where it is one (it ends with the job's id)."""
    for text in (chunks.get("Description"), xmp_description(chunks.get("XML:com.adobe.xmp") or "")):
        if text and _JOB.search(text):
            return text
    return None


def parse_midjourney(chunks: dict[str, str]) -> ImageMetadata | None:
    text = midjourney_text(chunks)
    if text is None:
        return None
    job = _JOB.search(text)
    command = text[:job.start()].strip()
    marks = list(_PARAMETER.finditer(command))
    prompt = command[:marks[0].start()].strip() if marks else command
    parameters = dict(_parameters(command))
    extra = {}
    images = _IMAGE_PROMPTS.match(prompt)
    if images:
        extra["Image prompts"] = images[0].strip()
        prompt = prompt[images.end():]
    if marks:
        extra[PARAMETERS_FIELD] = command[marks[0].start():].strip()
    extra["Job ID"] = job[1]
    if chunks.get("Author", "").strip():
        extra["Author"] = chunks["Author"].strip()
    return ImageMetadata(
        "midjourney", prompt=prompt, negative_prompt=parameters.get("no", ""),
        seed=to_int(parameters.get("seed") or parameters.get("sameseed") or None),
        model_name=_model(parameters), extra=extra,
    )


def _parameters(command: str) -> list[tuple[str, str]]:
    """Each `--parameter` of a prompt line (lower case) with its value (to the next one; "" for a switch)."""
    marks = list(_PARAMETER.finditer(command))
    return [(mark[1].lower(), command[mark.end():after.start() if after else len(command)].strip())
            for mark, after in zip(marks, [*marks[1:], None])]


def unrepeated(extra: dict[str, str]) -> str:
    """The parameters of an image's line that a reading does not take (all but `TAKEN`), as written."""
    return " ".join(f"--{name} {value}".strip() for name, value in _parameters(extra.get(PARAMETERS_FIELD, ""))
                    if name not in TAKEN)


def _model(parameters: dict[str, str]) -> str:
    """"Midjourney v6.1", "niji 6", or "Midjourney" where the prompt left the version to the account's default."""
    if "niji" in parameters:
        return f"niji {parameters['niji']}".strip()
    version = parameters.get("v") or parameters.get("version")
    return f"Midjourney v{version}" if version else "Midjourney"
