"""Images in the layouts of tools no public test suite has sample files of (Draw Things, Easy
Diffusion, Mochi Diffusion, Fooocus's log beside bare images), written as those tools write them, for the reader, gallery and window tests; and the
hashes A1111 names files by, computed here from its definition, not with the app's code."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import urllib.parse
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


MOCHI = ("Include in Image: a lighthouse; stormy sea, dramatic sky; Exclude from Image: ; Model: sd-1.5_512x512; "
         "Steps: 12; Guidance Scale: 7.5; Seed: 3141592653; Size: 512x768; Scheduler: DPM-Solver++; "
         "ML Compute Unit: CPU & Neural Engine; Generator: Mochi Diffusion 5.2")


def _mochi_xmp(caption: str) -> str:
    """The XMP packet macOS's ImageIO writes for an IPTC Caption-Abstract: its dc:description."""
    text = caption.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/" '
            'x:xmptk="XMP Core 6.0.0"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"><dc:description><rdf:Alt>'
            f'<rdf:li xml:lang="x-default">{text}</rdf:li></rdf:Alt></dc:description></rdf:Description></rdf:RDF>'
            '</x:xmpmeta><?xpacket end="w"?>')


def mochi_png(path: Path, caption: str = MOCHI) -> Path:
    """Mochi Diffusion's caption as ImageIO stores IPTC in a PNG: XMP in an iTXt chunk."""
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", _mochi_xmp(caption))
    Image.new("RGB", (16, 24), (20, 40, 80)).save(path, pnginfo=info)
    return path


def mochi_jpeg(path: Path, caption: str = MOCHI, xmp: bool = False) -> Path:
    """Mochi Diffusion's caption as IPTC-IIM in a JPEG's APP13 Photoshop segment (UTF-8, said by 1:90), beside
    the program's name and version; with `xmp`, also as the XMP packet."""
    def dataset(record: int, number: int, value: bytes) -> bytes:
        return bytes([0x1C, record, number]) + struct.pack(">H", len(value)) + value
    iim = (dataset(1, 90, b"\x1b%G") + dataset(2, 0, b"\x00\x04") + dataset(2, 65, b"Mochi Diffusion")
           + dataset(2, 70, b"5.2") + dataset(2, 120, caption.encode()))
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\0\0" + struct.pack(">I", len(iim)) + iim + b"\0" * (len(iim) % 2)
    body = b"Photoshop 3.0\0" + resource
    buffer = io.BytesIO()
    Image.new("RGB", (16, 24), (20, 40, 80)).save(buffer, "JPEG", **({"xmp": _mochi_xmp(caption).encode()} if xmp else {}))
    data = buffer.getvalue()
    path.write_bytes(data[:2] + b"\xff\xed" + struct.pack(">H", len(body) + 2) + body + data[2:])
    return path


MIDJOURNEY = ("https://s.mj.run/x1Yz a lighthouse on a cliff, storm, oil painting --no boats, people --ar 3:2 "
              "--stylize 250 --seed 4242 --v 6.1 Job ID: 5e0b2f7c-9d41-4c8e-a3f6-1b2c3d4e5f60")


def midjourney_png(path: Path, description: str = MIDJOURNEY, xmp_only: bool = False) -> Path:
    """An image as Midjourney's web site downloads it: the prompt line and the job's id as PNG text `Description`,
    the account as `Author`, and an XMP packet with the IPTC fields that mark it as made by a generator; with
    `xmp_only`, the prompt line only as the packet's `dc:description` (as image tools that rewrite text keep it)."""
    info = PngInfo()
    if not xmp_only:
        info.add_text("Description", description)
    info.add_text("Author", "lumen_artist")
    info.add_text("Creation Time", "2025-03-14T09:26:53+00:00")
    described = "" if not xmp_only else \
        ('<dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
         f'{description.replace("&", "&amp;").replace("<", "&lt;")}</rdf:li></rdf:Alt></dc:description>')
    info.add_itxt("XML:com.adobe.xmp",
                  '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
                  '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                  '<rdf:Description rdf:about="" xmlns:iptcExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
                  'xmlns:dc="http://purl.org/dc/elements/1.1/" '
                  'iptcExt:DigImageGUID="2f1e0d9c-8b7a-4655-9443-3a2b1c0d9e8f" '
                  'iptcExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia">'
                  f'{described}</rdf:Description></rdf:RDF></x:xmpmeta>')
    Image.new("RGB", (24, 16), (60, 70, 90)).save(path, pnginfo=info)
    return path


FOOOCUS_LOG_ROWS = [  # (label, key, value) as Fooocus's async worker lists an image's settings
    ("Prompt", "prompt", "a red fox in the snow"), ("Negative Prompt", "negative_prompt", "blurry"),
    ("Fooocus V2 Expansion", "prompt_expansion", "a red fox in the snow, intricate, highly detailed"),
    ("Styles", "styles", "['Fooocus V2', 'Fooocus Enhance']"), ("Performance", "performance", "Hyper-SD"),
    ("Steps", "steps", 4), ("Resolution", "resolution", "(1152, 896)"), ("Guidance Scale", "guidance_scale", 1.0),
    ("Sharpness", "sharpness", 0.0), ("ADM Guidance", "adm_guidance", "(1.0, 1.0, 0.0)"),
    ("Base Model", "base_model", "juggernautXL_v8Rundiffusion.safetensors"), ("Refiner Model", "refiner_model", "None"),
    ("Refiner Switch", "refiner_switch", 1.0), ("Sampler", "sampler", "dpmpp_sde_gpu"),
    ("Scheduler", "scheduler", "karras"), ("VAE", "vae", "Default (model)"), ("Seed", "seed", "1234567890"),
    ("LoRA 1", "lora_combined_1", "sdxl_hyper_sd_4step_lora.safetensors : 0.8"),
    ("Metadata Scheme", "metadata_scheme", False), ("Version", "version", "Fooocus v2.5.5"),
]


def fooocus_outputs(folder: Path, names: tuple[str, ...] = ("2026-12-03_10-00-01_1234.png",
                                                           "2026-12-03_10-01-07_5678.png"),
                    version: str = "2.5") -> Path:
    """A Fooocus day folder as it leaves it by default: images with no metadata, and `log.html` with an entry for
    each (the newest first), its settings as the table and the "Copy to Clipboard" button's URL-quoted JSON. The
    first image's entry is made with another seed, to tell the entries apart. `version` "2.1" writes the table
    only, keyed by its labels in cells of class 'key', as Fooocus 2.1.8xx did; "2.1-button" adds its button,
    whose JSON is keyed by the labels too (early 2024)."""
    folder.mkdir(parents=True, exist_ok=True)
    if version == "2.1.7":  # paragraphs, appended (Fooocus's private_logger before November 2023)
        return _fooocus_paragraph_log(folder, names)
    items = []
    for number, name in enumerate(names):
        Image.new("RGB", (16, 12), (10 * number, 80, 120)).save(folder / name)
        rows = [(label, key, str(int(value) + number) if key == "seed" else value)
                for label, key, value in FOOOCUS_LOG_ROWS]
        item = f'<div id="{name.replace(".", "_")}" class="image-container"><hr><table><tr>\n'
        item += (f'<td><a href="{name}" target="_blank"><img src=\'{name}\' onerror="this.closest(\'.image-container\')'
                 f'.style.display=\'none\';" loading=\'lazy\'/></a><div>{name}</div></td>')
        old = version.startswith("2.1")
        if old:  # 2.1 had no steps, VAE or metadata scheme rows, and named LoRAs by their labels only
            rows = [row for row in rows if row[1] not in ("steps", "vae", "metadata_scheme")]
        item += "<td><table class='metadata'>"
        item += "".join(f"<tr><td class='{'key' if old else 'label'}'>{label}</td><td class='value'>{value}</td></tr>\n"
                        for label, _, value in rows)
        item += "</table>"
        keyed = {label if old else key: value for label, key, value in rows}
        quoted = urllib.parse.quote(json.dumps(keyed, indent=0), safe="")
        button = f"</br><button onclick=\"to_clipboard('{quoted}')\">Copy to Clipboard</button>" if version != "2.1" else ""
        item += f"{button}</td></tr></table></div>\n\n"
        items.insert(0, item)  # Fooocus puts the newest entry first
    (folder / "log.html").write_text(
        "<!DOCTYPE html><html><head><title>Fooocus Log 2026-12-03</title></head><body><p>Fooocus Log 2026-12-03 "
        "(private)</p>\n<!--fooocus-log-split-->\n\n" + "".join(items) + "\n<!--fooocus-log-split--></body></html>",
        encoding="utf-8")
    return folder


def _fooocus_paragraph_log(folder: Path, names: tuple[str, ...]) -> Path:
    """The log as Fooocus 2.1.7xx appended it: the first three settings a paragraph each, then two a paragraph."""
    text = "<p>Fooocus Log 2023-10-20 (private)</p>\n<p>All images do not contain any hidden data.</p>"
    rows = [row for row in FOOOCUS_LOG_ROWS if row[1] not in ("steps", "vae", "metadata_scheme")]
    for number, name in enumerate(names):
        Image.new("RGB", (16, 12), (10 * number, 80, 120)).save(folder / name)
        text += f'<div id="{name.replace(".", "_")}"><hr>\n<p>{name}</p>\n'
        for index, (label, key, value) in enumerate(rows):
            value = str(int(value) + number) if key == "seed" else value
            if index < 3:
                text += f"<p>{label}: <b>{value}</b> </p>\n"
            else:
                text += f"<p>{label}: <b>{value}</b>, " if (index - 3) % 2 == 0 else f"{label}: <b>{value}</b></p>\n"
        text += (f'<p><img src="{name}" width=512 onerror="document.getElementById(\'{name.replace(".", "_")}\')'
                 f'.style.display = \'none\';"></img></p></div>\n')
    (folder / "log.html").write_text(text, encoding="utf-8")
    return folder


def a1111_lora_hash(path: Path) -> str:
    """The 12 digits A1111 writes in `Lora hashes`: its `addnet_hash_safetensors`, the sha256 of the bytes after
    the safetensors header (8 bytes of header length, then the header)."""
    data = Path(path).read_bytes()
    return hashlib.sha256(data[8 + int.from_bytes(data[:8], "little"):]).hexdigest()[:12]
