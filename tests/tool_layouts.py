"""Images in the layouts of tools no public test suite has sample files of (Draw Things, Easy
Diffusion), written as those tools write them, for the reader, gallery and window tests; and the
hashes A1111 names files by, computed here from its definition, not with the app's code."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

DRAW_THINGS = {"c": "a paper boat & a frog", "uc": "ugly", "model": "sd_xl_base_1.0_f16.ckpt", "sampler": "DPM++ 2M Karras",
               "seed": 123456789, "scale": 1.0, "steps": 8, "size": "1024x1024",
               "lora": [{"file": "hyper_sdxl_8_step_lora_f16.ckpt", "weight": 1}]}
EASY_DIFFUSION = {"prompt": "an owl on a birch branch", "negative_prompt": "blurry", "seed": "3",
                  "use_stable_diffusion_model": "C:\\sd\\models\\sd-v1-5.safetensors", "sampler_name": "euler_a",
                  "width": "512", "height": "640", "num_inference_steps": "25", "guidance_scale": "7.5"}


def draw_things_png(path: Path, record: dict = DRAW_THINGS) -> Path:
    """The record as JSON in the XMP packet's exif:UserComment, XML-escaped, in an iTXt chunk."""
    text = json.dumps(record).replace("&", "&amp;").replace('"', "&quot;")
    xmp = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           '<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:xmp="http://ns.adobe.com/xap/1.0/">'
           '<xmp:CreatorTool>Draw Things</xmp:CreatorTool><exif:UserComment><rdf:Alt>'
           f'<rdf:li xml:lang="x-default">{text}</rdf:li></rdf:Alt></exif:UserComment></rdf:Description></rdf:RDF></x:xmpmeta>')
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    Image.new("RGB", (16, 16), (30, 60, 90)).save(path, pnginfo=info)
    return path


def easy_diffusion_png(path: Path, chunks: dict = EASY_DIFFUSION) -> Path:
    """One text chunk per setting."""
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    Image.new("RGB", (16, 16), (90, 60, 30)).save(path, pnginfo=info)
    return path


def a1111_lora_hash(path: Path) -> str:
    """The 12 digits A1111 writes in `Lora hashes`: its `addnet_hash_safetensors`, the sha256 of the bytes after
    the safetensors header (8 bytes of header length, then the header)."""
    data = Path(path).read_bytes()
    return hashlib.sha256(data[8 + int.from_bytes(data[:8], "little"):]).hexdigest()[:12]
