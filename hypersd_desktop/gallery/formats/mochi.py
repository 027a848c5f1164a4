"""Mochi Diffusion (macOS, Core ML): one caption of `Key: value` fields in the image's IPTC
Caption-Abstract, which macOS's ImageIO stores as the XMP packet's `dc:description` (PNG, JPEG,
HEIC) and, in a JPEG, also as IPTC data in the APP13 segment.

Up to 6.0 the fields are joined by "; " without escaping, so a prompt may itself hold "; "; the
caption is cut only where "; " is followed by one of Mochi's own keys. From 6.1 the caption starts
`Metadata Version: 2` and has one field a line, with `\\`, `\n` and `\r` escaped (a key such as
`Input Images` may repeat). Other scripts write the same caption as PNG text (`Description`,
`parameters`). Versions 4 and 5 could enlarge an image 4× with RealESRGAN after generating it and
then say `Upscaler: RealESRGAN` with the enlarged `Size`.
"""

from __future__ import annotations

import html
import re

from hypersd_desktop.gallery.formats.common import ImageMetadata, size_of, to_float, to_int

_KEYS = ("Metadata Version", "Date", "Include in Image", "Exclude from Image", "Model", "Engine", "Model Key", "Size",
         "Quality", "Starting Image", "ControlNet Image", "Input Images", "Upscaler", "Scheduler", "ML Compute Unit",
         "Seed", "Steps", "Guidance Scale", "Generator")
_FIELD = re.compile(r"(?:^|; )(" + "|".join(re.escape(key) for key in _KEYS) + r"):(?: |(?=;)|$)")
_LINES_VERSION = re.compile(r"Metadata Version: *(\d+) *\r?\n")
_ESCAPE = re.compile(r"\\(\\|n|r)")
_UNESCAPED = {"\\": "\\", "n": "\n", "r": "\r"}
_XMP_DESCRIPTION = re.compile(r"<dc:description>(.*?)</dc:description>", re.DOTALL)
_XMP_ITEM = re.compile(r"<rdf:li[^>]*>(.*?)</rdf:li>", re.DOTALL)
_UPSCALE = 4  # RealESRGAN's enlargement in Mochi 4 and 5
_DETAILS = ("Quality", "Starting Image", "ControlNet Image", "Input Images", "Upscaler", "ML Compute Unit", "Engine",
            "Model Key", "Generator")

CAPTION_CHUNKS = ("XML:com.adobe.xmp", "IPTC:Caption-Abstract", "Description", "parameters")


def is_mochi_caption(text: str) -> bool:
    text = text.lstrip()
    return bool(_LINES_VERSION.match(text)) or text.startswith("Include in Image:") \
        or "; Generator: Mochi Diffusion" in text


def xmp_description(xmp: str) -> str | None:
    """The XMP packet's `dc:description` (its default language's), read with patterns, not an XML parser: an
    XMP packet is untrusted text (entity expansion)."""
    block = _XMP_DESCRIPTION.search(xmp)
    if block is None:
        return None
    item = _XMP_ITEM.search(block[1])
    return html.unescape(item[1] if item else block[1])


def parse_mochi(chunks: dict[str, str]) -> ImageMetadata | None:
    """The first Mochi caption among the places it is written."""
    for key in CAPTION_CHUNKS:
        text = chunks.get(key)
        if key == "XML:com.adobe.xmp" and text:
            text = xmp_description(text)
        if text and is_mochi_caption(text):
            return parse_mochi_caption(text.strip())
    return None


def _fields(caption: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    if _LINES_VERSION.match(caption):
        for line in caption.splitlines()[1:]:
            key, sep, value = line.partition(":")
            if sep:
                text = _ESCAPE.sub(lambda match: _UNESCAPED[match[1]], value.removeprefix(" "))
                fields.setdefault(key.strip(), []).append(text)
        return fields
    marks = list(_FIELD.finditer(caption))
    for mark, after in zip(marks, [*marks[1:], None]):
        fields.setdefault(mark[1], []).append(caption[mark.end():after.start() if after else len(caption)])
    return fields


def parse_mochi_caption(caption: str) -> ImageMetadata | None:
    fields = _fields(caption)
    if not fields:
        return None

    def first(key: str) -> str | None:
        values = fields.get(key)
        return values[0].strip() if values else None

    width, height = size_of(first("Size"))
    upscaler = first("Upscaler")
    if upscaler and width and height and width % _UPSCALE == height % _UPSCALE == 0:
        width, height = width // _UPSCALE, height // _UPSCALE  # the size it was generated at
    extra = {key: ", ".join(value.strip() for value in fields[key]) for key in _DETAILS if key in fields}
    if upscaler:
        extra["Upscaler"] = f"{upscaler} (×{_UPSCALE}, after generating)"
    if first("Starting Image"):  # its image-to-image, in the words `common.other_passes` reads
        extra.update({"Generation mode": "img2img", "Init image": first("Starting Image")})
    if first("ControlNet Image"):
        extra["ControlNet 0"] = "Model: unknown"
    return ImageMetadata(
        format="mochi", prompt=first("Include in Image") or "", negative_prompt=first("Exclude from Image") or "",
        steps=to_int(first("Steps")), sampler=first("Scheduler") or None, guidance=to_float(first("Guidance Scale")),
        seed=to_int(first("Seed")), width=width, height=height, model_name=first("Model") or None, extra=extra,
    )
