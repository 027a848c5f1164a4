"""Seeded fuzzing of the parsers that read files and text made elsewhere: the weights inspector, the
image metadata reader (with the gallery import behind it; JPEG IPTC segments among its inputs), Civitai's API
answers, Fooocus's log, the batch job parser, the prompt reader, and trigger words with the notes other tools keep
beside a model. Every input
gives a result or one of the app's own errors, never another exception, within a time and
memory bound. The seed is fixed, so a failure repeats; FUZZ_CASES and FUZZ_SEED search further."""

from __future__ import annotations

import io
import json
import os
import random
import string
import struct
import time
import tracemalloc
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hypersd_desktop.core.errors import AppError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.engine.inspect import inspect_file
from hypersd_desktop.engine.types import GenerationRequest
from hypersd_desktop.gallery.gallery import Gallery, read_metadata
from hypersd_desktop.worker.batch import parse_job, plan_units

CASES = int(os.environ.get("FUZZ_CASES", "150"))
SEED = int(os.environ.get("FUZZ_SEED", "0"))  # another value searches other inputs
SECONDS_PER_INPUT = 2.0
BYTES_PER_INPUT = 64 * 2**20


def junk_value(rng: random.Random, depth: int = 0):
    choice = rng.randrange(12 if depth < 3 else 8)
    if choice == 0:
        return rng.randrange(-2**70, 2**70)
    if choice == 1:
        return rng.choice([0, -1, 1, 2**63, 2**64, 1e400, -1e400, float("nan"), 0.5, True, False, None])
    if choice == 2:
        return "".join(rng.choice(string.printable + "\x00\x1b\u202e é") for _ in range(rng.randrange(12)))
    if choice == 3:
        return rng.choice(["F32", "F16", "BF16", "I64", "U8", "f32", "", "F8_E4M3"])
    if choice in (4, 5, 6, 7):
        return rng.randrange(0, 4096)
    if choice in (8, 9):
        return [junk_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {junk_text(rng): junk_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def junk_text(rng: random.Random) -> str:
    words = ["dtype", "shape", "data_offsets", "__metadata__", "lora_unet_down_blocks_0", "prompt", "seed",
             "Steps", "model.diffusion_model.input_blocks.0.0.weight", "lora_A", "alpha", "class_type", "inputs"]
    return rng.choice(words) if rng.random() < 0.7 else "".join(rng.choice(string.ascii_letters) for _ in range(6))


def bounded(call):
    """Run `call`; fail the test if it takes too long or holds too much memory at its peak."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        return call()
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert elapsed < SECONDS_PER_INPUT and peak < BYTES_PER_INPUT, (elapsed, peak)


def safetensors_bytes(rng: random.Random) -> bytes:
    tensors: dict = {}
    offset = 0
    for k in range(rng.randrange(1, 6)):
        size = 4 * rng.randrange(1, 8)
        entry = {"dtype": "F32", "shape": [size // 4], "data_offsets": [offset, offset + size]}
        offset += size
        if rng.random() < 0.5:  # damage one field
            entry[rng.choice(list(entry))] = junk_value(rng)
        if rng.random() < 0.2:
            entry = junk_value(rng)
        tensors[junk_text(rng) if rng.random() < 0.3 else f"lora_unet_down_blocks_{k}.lora_down.weight"] = entry
    if rng.random() < 0.3:
        tensors["__metadata__"] = junk_value(rng)
    header = json.dumps(tensors, allow_nan=True).encode()
    if rng.random() < 0.2:
        header = header[: rng.randrange(len(header) + 1)]
    length = len(header) if rng.random() < 0.8 else rng.choice([0, 7, len(header) + 9, 2**40, 2**64 - 1])
    data = bytes(rng.randrange(256) for _ in range(offset if rng.random() < 0.8 else rng.randrange(64)))
    return struct.pack("<Q", length) + header + data


def test_the_weights_inspector(tmp_path):
    rng = random.Random(20261130 + SEED)
    outcomes = {"ok": 0, "refused": 0}
    for case in range(CASES * 2):
        path = tmp_path / f"{case}.safetensors"
        path.write_bytes(safetensors_bytes(rng) if rng.random() < 0.95 else os.urandom(rng.randrange(40)))
        try:
            bounded(lambda: inspect_file(path))
            outcomes["ok"] += 1
        except AppError:
            outcomes["refused"] += 1
    assert outcomes["ok"] > 5 and outcomes["refused"] > 50  # the generator makes both kinds


def parameters_text(rng: random.Random) -> str:
    fields = ["Steps", "Sampler", "CFG scale", "Seed", "Size", "Model hash", "Model", "Lora hashes", "Version"]
    values = [str(junk_value(rng)) for _ in fields]
    line = ", ".join(f"{rng.choice(fields)}: {value}" for value in values[: rng.randrange(len(fields))])
    return rng.choice(["", "a prompt\n", "Negative prompt: x\n", "{", "[]"]) + line


def comfy_graph(rng: random.Random) -> str:
    def junk_input(k: int):
        return rng.choice([[str(rng.randrange(5)), rng.randrange(3)], junk_value(rng)])  # a link, or a value

    graph = {str(k): {"class_type": rng.choice(["KSampler", "CLIPTextEncode", "SamplerCustomAdvanced",
                                                "RandomNoise", "StringConcatenate", junk_text(rng)]),
                      "inputs": {rng.choice(["string_a", "string_b", "text", "positive", "negative", "model",
                                             "latent_image", junk_text(rng)]): junk_input(k) for _ in range(4)}}
             for k in range(rng.randrange(5))}
    if rng.random() < 0.3:
        graph = junk_value(rng)
    return json.dumps(graph, allow_nan=True)


def real_workflows() -> list[dict]:
    """The UI workflows of the corpus's real ComfyUI images, and each with its sampling made a subgraph."""
    from tests.gallery.test_comfyui_workflow import SAMPLING, into_subgraph, z_image_template

    corpus = Path(__file__).parent / "gallery" / "corpus"
    found = []
    for path in sorted(corpus.rglob("*.png")):
        with Image.open(path) as image:
            if "workflow" in image.text:
                found.append(json.loads(image.text["workflow"]))
    return found + [into_subgraph(workflow, SAMPLING) for workflow in found] + [z_image_template()]


def mutated(rng: random.Random, value, rate: float):
    """`value` with junk in place of some of its parts, at any depth."""
    if isinstance(value, dict):
        return {key: junk_value(rng) if rng.random() < rate else mutated(rng, part, rate) for key, part in value.items()}
    if isinstance(value, list):
        return [junk_value(rng) if rng.random() < rate else mutated(rng, part, rate) for part in value]
    return value


def comfy_workflow(rng: random.Random, real: list[dict]) -> str:
    """A real workflow with junk in some places, or a workflow's shape with junk in all of them: nodes, their
    inputs and widgets, links as lists or objects."""
    if real and rng.random() < 0.5:
        return json.dumps(mutated(rng, rng.choice(real), rng.choice([0.01, 0.05, 0.2])), allow_nan=True)
    def entry():
        return {"name": rng.choice(["model", "clip", "text", "seed", junk_value(rng)]), "type": junk_value(rng),
                "link": rng.choice([rng.randrange(6), None, junk_value(rng)]),
                "widget": rng.choice([{"name": "seed"}, junk_value(rng)])}
    nodes = [{"id": rng.choice([k, str(k), junk_value(rng)]), "type": rng.choice(["KSampler", "CLIPTextEncode",
                                                                                   "Reroute", "PrimitiveNode",
                                                                                   junk_text(rng)]),
              "mode": rng.choice([0, 2, 4, junk_value(rng)]), "inputs": [entry() for _ in range(rng.randrange(4))],
              "widgets_values": rng.choice([[junk_value(rng) for _ in range(rng.randrange(8))], junk_value(rng)])}
             for k in range(rng.randrange(6))]
    links = [rng.choice([[rng.randrange(6) for _ in range(6)], {"id": rng.randrange(6), "origin_id": junk_value(rng),
                                                                 "origin_slot": 0}, junk_value(rng)])
             for _ in range(rng.randrange(6))]
    workflow = {"nodes": nodes, "links": links} if rng.random() < 0.8 else junk_value(rng)
    return json.dumps(workflow, allow_nan=True)


MOCHI_KEYS = ["Metadata Version", "Include in Image", "Exclude from Image", "Model", "Steps", "Guidance Scale", "Seed",
              "Size", "Upscaler", "Input Images", "Scheduler", "Generator"]


def mochi_caption(rng: random.Random) -> str:
    """A caption in Mochi Diffusion's layout (fields by "; " or a line each) with junk among its keys and values."""
    fields = [f"{rng.choice(MOCHI_KEYS) if rng.random() < 0.8 else junk_text(rng)}:"
              f"{rng.choice([' ', '', ';', ' ; '])}{junk_value(rng)}" for _ in range(rng.randrange(8))]
    if rng.random() < 0.5:
        return "\n".join(["Metadata Version: 2", *fields]) + rng.choice(["", "\\", "\\n\r"])
    return "; ".join(["Include in Image: " + str(junk_value(rng)), *fields, "Generator: Mochi Diffusion 5.2"])


MIDJOURNEY_PARAMETERS = ["--no", "--seed", "--sameseed", "--v", "--version", "--niji", "--ar", "--raw", "--"]


def midjourney_line(rng: random.Random) -> str:
    """A prompt line in Midjourney's layout: image addresses, words, parameters with junk values, the job's id."""
    words = [rng.choice(["https://s.mj.run/x", "<https://a.b/c.png>", ""])] * rng.randrange(3)
    words += [rng.choice(MIDJOURNEY_PARAMETERS + [junk_text(rng)]) if rng.random() < 0.5 else str(junk_value(rng))
              for _ in range(rng.randrange(10))]
    job = rng.choice(["Job ID: 5e0b2f7c-9d41-4c8e-a3f6-1b2c3d4e5f60", "Job ID:", "Job ID: zz", ""])
    return " ".join(words) + rng.choice([" ", "\n", ""]) + job + rng.choice(["", " ", "\n\n"])


def caption(rng: random.Random) -> str:
    return mochi_caption(rng) if rng.random() < 0.5 else midjourney_line(rng)


def iptc_resource(rng: random.Random, caption: str) -> bytes:
    """A JPEG's APP13 segment: IPTC datasets, some with lengths that lie or run past the end."""
    data = b""
    for record, number, value in [(1, 90, b"\x1b%G"), (2, rng.choice([120, 65, 0]), caption.encode("utf-8", "replace"))]:
        length = len(value) if rng.random() < 0.8 else rng.choice([0, 2**15 - 1, 2**15 + 4, 2**16 - 1])
        data += bytes([0x1C, record, number]) + struct.pack(">H", length) + value
    data = data[: rng.randrange(len(data) + 1)] if rng.random() < 0.2 else data
    body = (b"Photoshop 3.0\0" + b"8BIM" + struct.pack(">H", 0x0404) + b"\0\0" + struct.pack(">I", len(data)) + data
            + b"\0" * (len(data) % 2))
    return b"\xff\xed" + struct.pack(">H", len(body) + 2) + body


def image_bytes(rng: random.Random, workflows: list[dict]) -> tuple[str, bytes]:
    picture = Image.new("RGB", (8, 8), (rng.randrange(256), 0, 0))
    buffer = io.BytesIO()
    kind = rng.choice(["png", "png", "jpeg", "webp"])
    if kind == "png":
        info = PngInfo()
        for key in rng.sample(["parameters", "prompt", "workflow", "hypersd", "invokeai_metadata", "sd-metadata",
                               "Dream", "Comment", "fooocus_scheme", "Description", "XML:com.adobe.xmp", "Author"],
                              rng.randrange(1, 4)):
            text = comfy_graph(rng) if key in ("prompt", "invokeai_metadata", "Comment", "hypersd") \
                else comfy_workflow(rng, workflows) if key == "workflow" \
                else caption(rng) if key == "Description" \
                else f"<dc:description><rdf:Alt><rdf:li>{caption(rng)}</rdf:li>" if key == "XML:com.adobe.xmp" \
                else parameters_text(rng)
            (info.add_itxt if rng.random() < 0.5 else info.add_text)(key, text)
        picture.save(buffer, "PNG", pnginfo=info)
    else:
        exif = Image.Exif()
        comment = (parameters_text(rng) if rng.random() < 0.5 else comfy_graph(rng)).encode("utf-8", "replace")
        exif.get_ifd(0x8769)[0x9286] = rng.choice([b"UNICODE\0", b"ASCII\0\0\0", b""]) + comment
        if rng.random() < 0.5:
            exif[0x010F] = "Prompt: " + comfy_graph(rng)
        if rng.random() < 0.3:
            exif[0x010E] = caption(rng)
        picture.save(buffer, kind.upper(), exif=exif.tobytes())
    data = buffer.getvalue()
    if kind == "jpeg" and rng.random() < 0.4:
        data = data[:2] + iptc_resource(rng, mochi_caption(rng)) + data[2:]
    if rng.random() < 0.1:  # damaged on disk
        data = data[: rng.randrange(len(data))]
    return kind, data


def described(metadata) -> None:
    """What reuse and the gallery say of a reading, besides the reading itself."""
    from hypersd_desktop.gallery.formats.common import other_prompts, unrepeated_note
    from hypersd_desktop.gallery.formats.hosted import hosted_note

    if metadata is not None:
        hosted_note(metadata), unrepeated_note(metadata), other_prompts(metadata.extra)


def test_the_image_metadata_reader_and_the_import_behind_it(tmp_path, app_home):
    rng = random.Random(7 + SEED)
    folder = tmp_path / "images"
    folder.mkdir()
    workflows = real_workflows()
    for case in range(CASES):
        kind, data = image_bytes(rng, workflows)
        path = folder / f"{case}.{kind}"
        path.write_bytes(data)
        try:
            bounded(lambda: described(read_metadata(path)[0]))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            pass  # not a readable image: the import lists it as unreadable
    gallery = Gallery(AppPaths.default())
    report = gallery.import_folder(folder)
    assert report.added + len(report.failed) == CASES and report.added > CASES // 2
    gallery.close()


def test_the_comfyui_workflow_reader():
    """Real workflows with junk in some places, and junk in a workflow's shape: a reading or None. Reading a
    workflow is quick, so many more cases run than of whole images."""
    from hypersd_desktop.gallery.formats.comfyui_workflow import parse_comfyui_workflow

    rng = random.Random(11 + SEED)
    workflows = real_workflows()
    read = sum(bounded(lambda: parse_comfyui_workflow(comfy_workflow(rng, workflows))) is not None
               for _ in range(CASES * 15))
    assert read > CASES  # the mutated real ones mostly still read


def test_generation_data_pasted_as_text():
    """What a person might paste: A1111 texts, graphs, workflows, captions and JSON records with junk in them,
    whole or cut anywhere. A reading has a prompt; nothing raises or runs long."""
    from hypersd_desktop.gallery.formats import parse_text

    rng = random.Random(13 + SEED)
    workflows = real_workflows()
    makers = [parameters_text, comfy_graph, lambda rng: comfy_workflow(rng, workflows), caption,
              lambda rng: json.dumps(mutated(rng, {"prompt": "a fox", "uc": "blurry", "scale": 5, "steps": 28,
                                                   "seed": 7, "sampler": "k_euler"}, 0.3)),
              lambda rng: json.dumps(mutated(rng, {"PositivePrompt": "a fox", "Steps": 20, "Seed": 3}, 0.3))]
    for _ in range(CASES * 5):
        text = rng.choice(makers)(rng)
        text = text[:rng.randrange(len(text) + 1)] if rng.random() < 0.2 else text
        read = bounded(lambda: parse_text(text))
        assert read is None or read.prompt.strip()


def civitai_answer(rng: random.Random) -> dict:
    """A version as Civitai's API describes one (or a model with its versions), with junk in some places."""
    version = {"id": 128713, "name": "v8", "baseModel": rng.choice(["SD 1.5", "SDXL 1.0", "Pony", "Other"]),
               "model": {"name": "DreamShaper", "type": rng.choice(["Checkpoint", "LORA", "TextualInversion"])},
               "trainedWords": ["dreamy, soft light", "dreamshaper"],
               "images": [{"url": "https://image.civitai.com/x/y/width=832/1.jpeg", "nsfwLevel": 1, "type": "image"}],
               "files": [{"name": "dreamshaper_8.safetensors", "type": "Model", "sizeKB": 2082642.3046875,
                          "primary": True, "hashes": {"AutoV2": "879DB523C3", "SHA256": "AB" * 32},
                          "metadata": {"format": "SafeTensor", "size": "pruned", "fp": "fp16"},
                          "downloadUrl": "https://civitai.com/api/download/models/128713"}]}
    if rng.random() < 0.3:
        version = {"id": 4384, "name": "DreamShaper", "type": "Checkpoint", "modelVersions": [version]}
    return mutated(rng, version, rng.choice([0.02, 0.1, 0.3]))


def test_civitais_answers():
    """What Civitai's API answers (or a server in between) is planned or refused with the app's own error."""
    from hypersd_desktop.models.addresses import address_entry
    from hypersd_desktop.models.civitai import civitai_plan

    rng = random.Random(17 + SEED)
    entry = address_entry("https://civitai.com/models/4384/dreamshaper?modelVersionId=128713", "https://hf.co")
    outcomes = {"planned": 0, "refused": 0}
    for _ in range(CASES * 10):
        try:
            bounded(lambda: civitai_plan(entry, civitai_answer(rng)))
            outcomes["planned"] += 1
        except AppError:
            outcomes["refused"] += 1
    assert outcomes["planned"] > CASES and outcomes["refused"] > CASES // 10


def test_civitais_search_answers():
    """What Civitai's search answers (`GET /api/v1/models`), junk in some places, gives models the app runs, each
    with its older versions, and a cursor, never another error."""
    from hypersd_desktop.models.civitai import search_results

    rng = random.Random(19 + SEED)
    listed = 0
    for _ in range(CASES * 4):
        versions = [civitai_answer(rng) for _ in range(rng.randrange(4))]
        answer = mutated(rng, {"items": [{"id": 4384, "name": "DreamShaper",
                                          "type": rng.choice(["Checkpoint", "Upscaler"]),
                                          "modelVersions": versions}],
                               "metadata": {"nextCursor": "2|55"}}, rng.choice([0.02, 0.1]))
        found, cursor = bounded(lambda: search_results(answer, rng.random() < 0.5,
                                                       rng.choice([(), ("sd15",), ("sdxl",)])))
        assert cursor is None or isinstance(cursor, str)
        for model in found:
            assert model.address.startswith("https://civitai.com/models/") and isinstance(model.preview, str)
            assert all(old.model_id == model.model_id for old in model.older)
        listed += len(found)
    assert listed > CASES // 2  # most answers list a model, some none


def test_the_fooocus_log_reader(tmp_path):
    """Fooocus's log.html beside bare images (`gallery/sidecars.py`), as written and with junk in its entries: an
    image's settings or None, never an exception."""
    import urllib.parse

    from hypersd_desktop.gallery.sidecars import sidecar_metadata

    rng = random.Random(13 + SEED)
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    pieces = ['class="image-container"', '<a href="a.png">', "<a href='a.png'>", '<a href="', "to_clipboard('",
              "')", "<img src='a.png'/>", urllib.parse.quote(json.dumps({"prompt": "x", "performance": "Speed"}), safe=""),
              "%7B%22prompt%22%3A%20%22x%22", "%22", "%", "'", '"', "<", "\n"]
    read = 0
    for case in range(CASES * 4):
        parts = [rng.choice(pieces) if rng.random() < 0.7 else urllib.parse.quote(json.dumps(junk_value(rng)))
                 for _ in range(rng.randrange(40))]
        if rng.random() < 0.5:  # an entry as written, with junk put in somewhere
            entry = [pieces[0], pieces[1], pieces[6], pieces[4], pieces[7], pieces[5]]
            entry.insert(rng.randrange(len(entry) + 1), rng.choice(parts or pieces))
            parts = entry
        (tmp_path / "log.html").write_text("".join(parts), encoding="utf-8", errors="surrogatepass")
        os.utime(tmp_path / "log.html", ns=(case, case))  # a new log each time, not the cached one
        read += bounded(lambda: sidecar_metadata(tmp_path / "a.png")) is not None
    assert read > 0


def job_file(rng: random.Random) -> tuple[str, str]:
    suffix = rng.choice([".txt", ".csv", ".json"])
    if suffix == ".json":
        items = [{junk_text(rng) if rng.random() < 0.2 else rng.choice(["prompt", "seed", "seeds", "steps", "guidance",
                                                                          "width", "lora"]): junk_value(rng)
                  for _ in range(3)} for _ in range(rng.randrange(4))]
        text = json.dumps(rng.choice([items, {"items": items}, junk_value(rng)]), allow_nan=True)
    elif suffix == ".csv":
        header = rng.sample(["prompt", "seed", "seeds", "steps", "guidance", "width", "height", "lora", "negative"], 4)
        rows = [",".join(str(junk_value(rng)).replace("\n", " ") for _ in header) for _ in range(rng.randrange(4))]
        text = "\n".join([",".join(header), *rows])
    else:
        options = ["--prompt", "--negative_prompt", "--seed", "--steps", "--cfg_scale", "--n_iter", "--batch_size",
                   "--sd_model", "--sampler_name", "--width", '"', "--"]
        text = "\n".join(" ".join(f"{rng.choice(options)} {junk_value(rng)}" for _ in range(rng.randrange(1, 6)))
                         if rng.random() < 0.5 else str(junk_value(rng)) for _ in range(rng.randrange(5)))
    return suffix, text


def test_the_batch_job_parser(tmp_path):
    rng = random.Random(11 + SEED)
    defaults = GenerationRequest(prompt="", base_model="/models/sd15")
    outcomes = {"ok": 0, "refused": 0}
    for case in range(CASES * 2):
        suffix, text = job_file(rng)
        path = tmp_path / f"{case}{suffix}"
        path.write_text(text, encoding="utf-8", errors="surrogatepass") if rng.random() < 0.9 else \
            path.write_bytes(os.urandom(rng.randrange(64)))
        try:
            bounded(lambda: plan_units(parse_job(path), defaults))
            outcomes["ok"] += 1
        except AppError:
            outcomes["refused"] += 1
    assert outcomes["ok"] > 10 and outcomes["refused"] > 10


@pytest.mark.parametrize("junk", [b"", b"\0" * 8, struct.pack("<Q", 2) + b"{}", struct.pack("<Q", 2) + b"[]"])
def test_tiny_weights_files(tmp_path, junk):
    path = tmp_path / "tiny.safetensors"
    path.write_bytes(junk)
    try:
        inspect_file(path)
    except AppError:
        pass


def test_the_prompt_reader():
    """A1111's prompt syntax (`engine/prompts.py`): any text gives windows of 77 positions with finite weights."""
    import tiny_models
    from hypersd_desktop.engine import prompts

    pipe = tiny_models.build_pipeline("sdxl")
    rng = random.Random(SEED)
    pieces = [*"ab ,:()[]\\<>.0123456789-+", "BREAK", "<lora:x:", "embedding:", "é", "猫", "🙂", "\n", "\t", "\x00"]
    for _ in range(CASES * 4):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 80)))
        for tokenizer in (pipe.tokenizer, pipe.tokenizer_2):
            windows = prompts.chunks(tokenizer, text)
            assert windows and all(len(w.ids) == len(w.weights) == 77 for w in windows), text
            assert all(abs(weight) < float("inf") for w in windows for weight in w.weights), text


def test_the_prompt_editing_reader():
    """Prompt editing (`engine/prompt_editing.py`): any text gives a schedule of rising steps ending at the last,
    every text it gives is read to windows, and the warnings never raise."""
    import tiny_models
    from hypersd_desktop.engine import prompt_editing, prompts

    tokenizer = tiny_models.build_pipeline("sd15").tokenizer
    rng = random.Random(SEED)
    pieces = [*"ab ,:|()[]\\<>.0123456789-+e", "BREAK", "<lora:x:0.5>", "0.5", "1e400", "nan", "猫", "\n", "\x00"]
    for _ in range(CASES * 4):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 80)))
        steps = rng.choice([1, 2, 3, 4, 8])
        entries = prompt_editing.schedule(text, steps)
        ends = [end for end, _ in entries]
        assert ends == sorted(set(ends)) and ends[-1] == steps and all(end >= 1 for end in ends), text
        for _, step_text in entries:
            assert prompts.chunks(tokenizer, step_text)
        prompt_editing.unchanging_warnings(text, text, steps, rng.choice([None, 1]))


def test_the_trigger_words_and_the_notes_beside_a_model(tmp_path):
    """Trigger words (`core/prompt_tags.py`) from any value give short, distinct texts; adding words a prompt lacks
    and taking them out again gives the prompt back; a note of any content beside a file (`models/model_notes.py`)
    gives notes, never an error."""
    from hypersd_desktop.core.prompt_tags import MAX_TRIGGER_WORDS, prompt_items, trigger_words, with_words, without_words
    from hypersd_desktop.models.model_notes import read_notes, training_tags

    rng = random.Random(23 + SEED)
    pieces = [*"ab ,:()[]<>{}", "sks", "pixel art", "(red, blue:1.2)", "<lora:x, y:1>", "\n", "é", "\x00"]
    weights = tmp_path / "style.safetensors"
    weights.write_bytes(b"")
    for _ in range(CASES * 4):
        words = bounded(lambda: trigger_words(*(junk_value(rng) for _ in range(rng.randrange(4))),
                                              "".join(rng.choice(pieces) for _ in range(rng.randrange(40)))))
        assert len(words) <= MAX_TRIGGER_WORDS and len({w.lower() for w in words}) == len(words)
        assert all(word and word == word.strip() and prompt_items(word) == [word] for word in words), words
        prompt = "".join(rng.choice(pieces) for _ in range(rng.randrange(40)))
        lacking = tuple(w for w in words if w.lower() not in {item.lower() for item in prompt_items(prompt)})
        added = with_words(prompt, lacking)
        assert prompt_items(without_words(added, lacking)) == prompt_items(prompt), (prompt, lacking)
        note = junk_value(rng)
        for suffix in (".json", ".civitai.info", ".cm-info.json", ".metadata.json"):
            weights.with_name("style" + suffix).write_text(json.dumps(
                {"activation text": note, "trainedWords": note, "TrainedWords": note, "civitai": note,
                 "preferred weight": junk_value(rng)} if rng.random() < 0.7 else note, allow_nan=True))
        notes = bounded(lambda: read_notes(weights, {"modelspec.trigger_phrase": str(note)}))
        assert notes.preferred_weight is None or abs(notes.preferred_weight) <= 10
        tags = bounded(lambda: training_tags({"ss_tag_frequency": json.dumps(note, allow_nan=True)}))
        assert all(tag and count > 0 for tag, count in tags) and len(tags) <= 12


def test_the_picture_readers_of_painting_programs_files(tmp_path):
    """Photoshop (.psd, .psb, 8 to 32 bits), GIMP, Krita and OpenRaster files (and JPEG XL pictures) damaged at
    random, in their headers, sizes and zip entries: each reads as a picture or is refused with the app's own
    error."""
    import zipfile

    from pictures import krita_file, painting, png

    from hypersd_desktop.core.images import kept_bytes

    photos = Path(__file__).parent / "photos"
    layer = png(Image.new("RGBA", (16, 12), (200, 30, 30, 128)))
    stack = (b"<image w='24' h='16'><stack><layer src='data/a.png' x='-4' y='3' opacity='0.5'/>"
             b"<stack opacity='0.7'><layer src='data/a.png' x='9' y='0'/></stack></stack></image>")
    seeds = [(photos / name).read_bytes() for name in ("hopper.psd", "16bit5x5.psd", "32bit5x5.psb", "2layers.psb",
                                                        "gimp/sketch-half.xcf", "gimp/modes.xcf",
                                                        "gimp/bottom-frame-semi-transparent.xcf",
                                                        "turned-by-exif.jxl", "grayscale.jxl")]
    seeds += [krita_file(tmp_path / "a.kra", Image.new("RGB", (24, 16), "white")).read_bytes(),
              painting(tmp_path / "a.ora", "image/openraster", {"stack.xml": stack, "data/a.png": layer}).read_bytes(),
              painting(tmp_path / "b.ora", "image/openraster", {"stack.xml": stack, "mergedimage.png": layer},
                       ).read_bytes()]
    rng = random.Random(11 + SEED)
    read = 0
    for _ in range(CASES):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 4)):
            if not data:
                break
            how = rng.randrange(4)
            if how == 0:  # a header field: Photoshop's sizes, depth and channels; a zip entry's lengths and method
                at = rng.choice([4, 12, 14, 18, 22, 24, 26, 8, 18, 22, 28, 30, 34, rng.randrange(len(data))])
                data[at:at + 2] = struct.pack(">H", rng.choice([0, 1, 2, 3, 16, 32, 255, 8192, 65535]))
            elif how == 1:
                data = data[: rng.randrange(len(data))]
            elif how == 2 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            else:  # a zip made again around a junk entry
                if data[:2] == b"PK":
                    target = tmp_path / "junk.ora"
                    painting(target, rng.choice(["image/openraster", "application/x-krita"]),
                             {rng.choice(["stack.xml", "mergedimage.png", "data/a.png"]):
                              bytes(rng.randrange(256) for _ in range(rng.randrange(64)))})
                    data = bytearray(target.read_bytes())
        try:
            bounded(lambda: kept_bytes(bytes(data), "The file"))
            read += 1
        except AppError:
            pass
    assert 0 < read < CASES
    assert zipfile.is_zipfile(tmp_path / "a.kra")
