"""The tools whose models run only on their own service (NovelAI, Midjourney): reuse of their images cannot install
the model an image names, and keeps the one chosen here."""

from __future__ import annotations

from hypersd_desktop.gallery.formats.common import ImageMetadata
from hypersd_desktop.gallery.formats.midjourney import unrepeated

# The tools whose models run only on their own service: the model an image of theirs names cannot be installed
HOSTED_MODELS = {"novelai": "NovelAI", "midjourney": "Midjourney"}


def hosted_note(metadata: ImageMetadata, instead: str = "a model installed here takes its place") -> str | None:
    """What reuse says of an image whose model runs only on its tool's service (None for any other image)."""
    service = HOSTED_MODELS.get(metadata.format)
    if service is None:
        return None
    unread = unrepeated(metadata.extra) if metadata.format == "midjourney" else ""
    unread = unread if len(unread) <= 200 else unread[:199] + "…"
    model = metadata.model_name or f"{service}'s model"
    return (f"The image was made with {model}, which runs only on {service}'s own service: {instead}"
            + (f"; its other parameters ({unread}) are not repeated." if unread else "."))
