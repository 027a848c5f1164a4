"""NovelAI: the prompt in `Description`, the model and its hash in `Source` ("Stable Diffusion
1D44365E"), the settings as JSON in `Comment`. The same record is also hidden in the alpha channel
("stealth" PNG info, see `stealth.py`), where it survives sites that strip PNG chunks.

NovelAI's V4 models take a prompt for each character besides the base prompt (`v4_prompt`'s
`char_captions`, each placed in the picture); `Comment`'s `prompt` is the base prompt alone. The
characters' prompts (and their negatives, where given) are kept in `extra` as CHARACTER_PROMPTS,
one per line, for reuse to add to the prompt (`syntax.reused_prompts`)."""

from __future__ import annotations

import json
import re

from hypersd_desktop.gallery.formats.common import ImageMetadata, json_object, to_float, to_int, to_text
from hypersd_desktop.gallery.formats.syntax import CHARACTERS

CHARACTER_PROMPTS, CHARACTER_NEGATIVES = CHARACTERS


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
        extra={name: "\n".join(texts) for name, texts in ((CHARACTER_PROMPTS, _characters(comment.get("v4_prompt"))),
                                                          (CHARACTER_NEGATIVES,
                                                           _characters(comment.get("v4_negative_prompt"))))
               if texts},
    )


def _characters(prompt) -> list[str]:
    """The characters' prompts of a V4 prompt (`{"caption": {"char_captions": [{"char_caption": …}]}}`), each
    without the trailing comma NovelAI's editor leaves; empty ones left out."""
    caption = prompt.get("caption") if isinstance(prompt, dict) else None
    captions = caption.get("char_captions") if isinstance(caption, dict) else None
    texts = [entry.get("char_caption") for entry in captions if isinstance(entry, dict)] \
        if isinstance(captions, list) else []
    return [text.strip().rstrip(",").strip() for text in texts if isinstance(text, str) and text.strip(" ,\n")]


def stealth_chunks(record: dict) -> dict[str, str]:
    """The chunks NovelAI's stealth record (a JSON object of its chunks) stands for: its texts, with `Comment`
    (JSON text, or an object in some writers') as JSON text."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in record.items()
            if isinstance(key, str) and isinstance(value, (str, dict))}
