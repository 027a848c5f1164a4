"""NovelAI: the prompt in `Description`, the model and its hash in `Source` ("Stable Diffusion
1D44365E"), the settings as JSON in `Comment`. The same record is also hidden in the alpha channel
("stealth" PNG info, see `stealth.py`), where it survives sites that strip PNG chunks."""

from __future__ import annotations

import re

from hypersd_desktop.gallery.formats.common import ImageMetadata, json_object, to_float, to_int, to_text


def is_novelai(chunks: dict[str, str]) -> bool:
    return chunks.get("Software", "").startswith("NovelAI") or chunks.get("Source", "").startswith("NovelAI")


def parse_novelai(chunks: dict[str, str]) -> ImageMetadata | None:
    comment = json_object(chunks.get("Comment"))
    if comment is None or not is_novelai(chunks):
        return None
    source = chunks.get("Source", "").strip()
    model_name, model_hash = source, None
    if match := re.fullmatch(r"(.*?)\s+([0-9A-Fa-f]{8})", source):
        model_name, model_hash = match[1], match[2]
    return ImageMetadata(
        format="novelai", prompt=to_text(comment.get("prompt")) or to_text(chunks.get("Description")),
        negative_prompt=to_text(comment.get("uc")), steps=to_int(comment.get("steps")),
        sampler=comment.get("sampler") if isinstance(comment.get("sampler"), str) else None,
        guidance=to_float(comment.get("scale")), seed=to_int(comment.get("seed")),
        width=to_int(comment.get("width")), height=to_int(comment.get("height")),
        model_name=model_name or None, model_hash=model_hash,
    )
