"""ComfyUI images that keep only the UI workflow: read as the API graph beside it reads.

The real files of the corpus carry both; with the graph taken out, the workflow alone must say the
same (texts, seed, steps, guidance, sampler, scheduler, size, model, LoRAs, clip skip, VAE).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hypersd_desktop.gallery.formats import parse_comfyui
from hypersd_desktop.gallery.formats.comfyui_workflow import parse_comfyui_workflow, workflow_graph
from hypersd_desktop.gallery.gallery import read_metadata

CORPUS = Path(__file__).parent / "corpus"
FIELDS = ("prompt", "negative_prompt", "seed", "steps", "guidance", "sampler", "width", "height", "model_name",
          "loras", "clip_skip", "vae_name", "extra")
BOTH = sorted(str(path.relative_to(CORPUS)) for path in CORPUS.rglob("*.png")
              if {"workflow", "prompt"} <= Image.open(path).text.keys())
# A group node keeps its inner nodes in the workflow's extra.groupNodes: not read (its seed and steps are)
GROUP_NODES = "sd-metadata/png/comfyui-group-nodes.png"


def only_the_workflow(source: Path, target: Path) -> Path:
    with Image.open(source) as image:
        info = PngInfo()
        info.add_text("workflow", image.text["workflow"])
        image.convert("RGB").save(target, pnginfo=info)
    return target


def test_the_corpus_has_real_workflows_of_several_kinds():
    assert len(BOTH) >= 15


@pytest.mark.parametrize("name", BOTH)
def test_a_real_image_without_its_graph_reads_the_same_from_its_workflow(name, tmp_path):
    with Image.open(CORPUS / name) as image:
        from_graph = parse_comfyui(image.text["prompt"])
    metadata, *_ = read_metadata(only_the_workflow(CORPUS / name, tmp_path / "workflow-only.png"))
    assert metadata is not None and metadata.format == "comfyui"
    fields = ("seed", "steps", "guidance", "sampler") if name == GROUP_NODES else FIELDS
    assert {field: getattr(metadata, field) for field in fields} == \
        {field: getattr(from_graph, field) for field in fields}


def node(node_id, kind, widgets=(), inputs=(), mode=0):
    return {"id": node_id, "type": kind, "mode": mode, "widgets_values": list(widgets),
            "inputs": [{"name": name, "type": link_type, "link": link} for name, link_type, link in inputs]}


def test_reroutes_bypassed_and_muted_nodes_primitives_and_link_objects():
    """What the front end writes besides plain links: a reroute and a bypassed LoRA loader on the model's path
    (the loader's model input passes through), a muted one left out, a primitive node feeding the seed, a custom
    text box feeding the prompt, and workflow version 1's links as objects."""
    nodes = [
        node(1, "CheckpointLoaderSimple", ["dreamshaper_8.safetensors"]),
        node(2, "LoraLoader", ["bypassed.safetensors", 1.0, 1.0], [("model", "MODEL", 1), ("clip", "CLIP", 2)], mode=4),
        node(3, "Reroute", [], [("", "*", 3)]),
        node(4, "LoraLoader", ["kept.safetensors", 0.7, 0.7], [("model", "MODEL", 4), ("clip", "CLIP", 5)]),
        node(5, "CLIPTextEncode", ["a lighthouse /* not this */ at dusk // nor this"],
             [("clip", "CLIP", 6), ("text", "STRING", 13)]),
        node(6, "CLIPTextEncode", ["blurry"], [("clip", "CLIP", 7)]),
        node(7, "EmptyLatentImage", [768, 512, 1]),
        node(8, "PrimitiveNode", [123456789, "randomize"]),
        node(9, "KSampler", [1, "randomize", 6, 2.5, "dpmpp_2m", "karras", 1.0],
             [("model", "MODEL", 8), ("positive", "CONDITIONING", 9), ("negative", "CONDITIONING", 10),
              ("latent_image", "LATENT", 11), ("seed", "INT", 12)]),
        node(10, "LoraLoader", ["muted.safetensors", 1.0, 1.0], [("model", "MODEL", None)], mode=2),
        node(11, "Text Box (some pack)", ["a lighthouse at dawn"]),
    ]
    links = [(1, 1, 0, 2, 0, "MODEL"), (2, 1, 1, 2, 1, "CLIP"), (3, 2, 0, 3, 0, "MODEL"), (4, 3, 0, 4, 0, "MODEL"),
             (5, 2, 1, 4, 1, "CLIP"), (6, 4, 1, 5, 0, "CLIP"), (7, 4, 1, 6, 0, "CLIP"), (8, 4, 0, 9, 0, "MODEL"),
             (9, 5, 0, 9, 1, "CONDITIONING"), (10, 6, 0, 9, 2, "CONDITIONING"), (11, 7, 0, 9, 3, "LATENT"),
             (12, 8, 0, 9, 4, "INT"), (13, 11, 0, 5, 1, "STRING")]
    as_lists = {"version": 0.4, "nodes": nodes, "links": [list(link) for link in links]}
    as_objects = {"version": 1, "nodes": nodes, "links": [
        dict(zip(("id", "origin_id", "origin_slot", "target_id", "target_slot", "type"), link)) for link in links]}
    for workflow in (as_lists, as_objects):
        metadata = parse_comfyui_workflow(json.dumps(workflow))
        assert metadata.prompt == "a lighthouse at dawn"  # the text box's, linked over the widget's
        assert (metadata.negative_prompt, metadata.seed, metadata.steps, metadata.guidance) == ("blurry", 123456789,
                                                                                              6, 2.5)
        assert (metadata.sampler, metadata.extra["scheduler"], metadata.width, metadata.height) == (
            "dpmpp_2m", "karras", 768, 512)
        assert metadata.model_name == "dreamshaper_8" and metadata.loras == (("kept", 0.7, None),)
    unlinked = {**as_lists, "links": [link for link in as_lists["links"] if link[0] != 13]}
    assert parse_comfyui_workflow(json.dumps(unlinked)).prompt == "a lighthouse  at dusk"  # comments gone


@pytest.mark.parametrize("workflow", [None, [], {}, {"nodes": "x"}, {"nodes": [{"id": 1}], "links": "x"},
                                      {"nodes": [node(1, "KSampler", ["x"] * 3)], "links": [[1, 99, 0, 1, 0]]}])
def test_what_is_no_workflow_reads_as_nothing(workflow):
    graph = workflow_graph(workflow)
    assert not graph or parse_comfyui_workflow(json.dumps(workflow)) is None


def test_a_workflow_in_a_webps_exif_is_read(tmp_path):
    with Image.open(CORPUS / "sd-metadata/png/comfyui.png") as image:
        workflow, graph = image.text["workflow"], parse_comfyui(image.text["prompt"])
    path = tmp_path / "workflow.webp"
    exif = Image.Exif()
    exif[0x0110] = "Workflow:" + workflow
    Image.new("RGB", (8, 8)).save(path, "WEBP", exif=exif.tobytes())
    metadata, *_ = read_metadata(path)
    assert (metadata.prompt, metadata.seed, metadata.model_name) == (graph.prompt, graph.seed, graph.model_name)


def test_the_text_an_image_saver_writes_beside_a_workflow_says_what_ran(tmp_path):
    """An image saver's A1111 text has the prompt as it ran (wildcards and {a|b} chosen); the workflow, the
    template: the text wins, as a graph's record would."""
    with Image.open(CORPUS / "sd-metadata/png/comfyui.png") as image:
        workflow = image.text["workflow"]
    info = PngInfo()
    info.add_text("workflow", workflow)
    info.add_text("parameters", "a red fox\nSteps: 4, Sampler: Euler, CFG scale: 1, Seed: 7, Size: 64x64")
    Image.new("RGB", (8, 8)).save(tmp_path / "saver.png", pnginfo=info)
    metadata, *_ = read_metadata(tmp_path / "saver.png")
    assert (metadata.format, metadata.prompt, metadata.seed) == ("a1111", "a red fox", 7)


def with_lora_node(lora_node: dict) -> str:
    """A workflow of a checkpoint, `lora_node` (id 2) on its model and CLIP, a prompt, and a KSampler."""
    nodes = [
        node(1, "CheckpointLoaderSimple", ["base.safetensors"]),
        {**lora_node, "id": 2, "inputs": [{"name": "model", "type": "MODEL", "link": 1},
                                          {"name": "clip", "type": "CLIP", "link": 2}]},
        node(3, "CLIPTextEncode", ["a harbour"], [("clip", "CLIP", 3)]),
        node(4, "EmptyLatentImage", [512, 512, 1]),
        node(5, "KSampler", [7, "fixed", 4, 1.0, "euler", "normal", 1.0],
             [("model", "MODEL", 4), ("positive", "CONDITIONING", 5), ("negative", "CONDITIONING", 5),
              ("latent_image", "LATENT", 6)]),
    ]
    links = [[1, 1, 0, 2, 0, "MODEL"], [2, 1, 1, 2, 1, "CLIP"], [3, 2, 1, 3, 0, "CLIP"], [4, 2, 0, 5, 0, "MODEL"],
             [5, 3, 0, 5, 1, "CONDITIONING"], [6, 4, 0, 5, 3, "LATENT"]]
    return json.dumps({"nodes": nodes, "links": links})


def test_a_power_lora_loaders_rows_in_a_workflow():
    """rgthree's Power Lora Loader keeps its LoRA rows as objects among its widget values."""
    rows = [{}, {"type": "PowerLoraLoaderHeaderWidget"},
            {"on": True, "lora": "detail.safetensors", "strength": 0.9, "strengthTwo": None},
            {"on": False, "lora": "off.safetensors", "strength": 1}, {}, ""]
    metadata = parse_comfyui_workflow(with_lora_node(node(2, "Power Lora Loader (rgthree)", rows)))
    assert (metadata.model_name, metadata.loras, metadata.seed) == ("base", (("detail", 0.9, None),), 7)


def test_a_lora_loader_stacks_rows_in_a_workflow():
    rows = ["a.safetensors", 0.5, "None", 1.0, "b.safetensors", 0.25, "None", 1]
    metadata = parse_comfyui_workflow(with_lora_node(node(2, "Lora Loader Stack (rgthree)", rows)))
    assert metadata.loras == (("a", 0.5, None), ("b", 0.25, None))


def test_a_flux_encoders_texts_and_a_concatenation_in_a_workflow():
    nodes = [
        node(1, "UNETLoader", ["flux1-dev.safetensors", "default"]),
        node(2, "PrimitiveStringMultiline", ["a red fox"]),
        node(3, "StringConcatenate", ["", " in the snow", ""], [("string_a", "STRING", 1)]),
        node(4, "CLIPTextEncodeFlux", ["", "", 3.5], [("clip", "CLIP", None), ("clip_l", "STRING", 2),
                                                      ("t5xxl", "STRING", 3)]),
        node(5, "CLIPTextEncodeFlux", ["blurry", "blurry /* not this */", 3.5], [("clip", "CLIP", None)]),
        node(6, "EmptySD3LatentImage", [1024, 768, 1]),
        node(7, "KSampler", [3, "fixed", 20, 1.0, "euler", "simple", 1.0],
             [("model", "MODEL", 4), ("positive", "CONDITIONING", 5), ("negative", "CONDITIONING", 6),
              ("latent_image", "LATENT", 7)]),
    ]
    links = [[1, 2, 0, 3, 0, "STRING"], [2, 3, 0, 4, 1, "STRING"], [3, 3, 0, 4, 2, "STRING"],
             [4, 1, 0, 7, 0, "MODEL"], [5, 4, 0, 7, 1, "CONDITIONING"], [6, 5, 0, 7, 2, "CONDITIONING"],
             [7, 6, 0, 7, 3, "LATENT"]]
    metadata = parse_comfyui_workflow(json.dumps({"nodes": nodes, "links": links}))
    assert (metadata.prompt, metadata.negative_prompt) == ("a red fox in the snow", "blurry")
    assert (metadata.model_name, metadata.width, metadata.height, metadata.steps) == ("flux1-dev", 1024, 768, 20)
