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


# Subgraphs (ComfyUI's front end since 1.24): the front end queues a subgraph's nodes as "instance:node".

def into_subgraph(workflow: dict, inner: set[str]) -> dict:
    """`workflow` with its nodes of the types in `inner` moved into one subgraph, as the front end's "Convert to
    Subgraph" writes it: links that cross in become the subgraph's inputs (from its input node, -10), links that
    cross out its outputs (to its output node, -20); the definition's links are objects. A sampler's unlinked seed
    is promoted: the instance holds the value, the inner node a stale one."""
    nodes = [dict(node, inputs=[dict(entry) for entry in node.get("inputs") or []]) for node in workflow["nodes"]]
    inside = {node["id"] for node in nodes if node["type"] in inner}
    instance = 9000  # ids may be text ("SaveImage", "4:1") in these files
    next_link = max(link[0] for link in workflow["links"]) + 1
    inputs, outputs, inner_links, outer_links, out_slots = [], [], [], [], {}
    for link_id, origin, origin_slot, target, target_slot, kind in (link[:6] for link in workflow["links"]):
        if origin in inside and target in inside:
            inner_links.append((link_id, origin, origin_slot, target, target_slot, kind))
        elif target in inside:
            inputs.append({"name": f"in_{len(inputs)}", "type": kind, "linkIds": [link_id]})
            inner_links.append((link_id, -10, len(inputs) - 1, target, target_slot, kind))
            outer_links.append([next_link, origin, origin_slot, instance, len(inputs) - 1, kind])
            next_link += 1
        elif origin in inside:
            if (origin, origin_slot) not in out_slots:
                out_slots[origin, origin_slot] = len(outputs)
                outputs.append({"name": f"out_{len(outputs)}", "type": kind, "linkIds": [next_link]})
                inner_links.append((next_link, origin, origin_slot, -20, len(outputs) - 1, kind))
                next_link += 1
            outer_links.append([link_id, instance, out_slots[origin, origin_slot], target, target_slot, kind])
        else:
            outer_links.append([link_id, origin, origin_slot, target, target_slot, kind])
    promoted = []
    for node in nodes:
        if node["id"] in inside and node["type"] == "KSampler" and node["widgets_values"][0] != 0 \
                and not any(entry["name"] == "seed" and entry.get("link") is not None for entry in node["inputs"]):
            promoted.append(node["widgets_values"][0])
            node["widgets_values"] = [0, *node["widgets_values"][1:]]  # stale: the instance's value is queued
            node["inputs"] = [entry for entry in node["inputs"] if entry["name"] != "seed"]
            node["inputs"].append({"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": next_link})
            inputs.append({"name": f"seed_{len(inputs)}", "type": "INT", "linkIds": [next_link]})
            inner_links.append((next_link, -10, len(inputs) - 1, node["id"], len(node["inputs"]) - 1, "INT"))
            next_link += 1
    fields = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")
    definition = {"id": "5f2d8c1e-0b7a-4c39-9d0e-2a6b1c3e4f50", "version": 1, "name": "Sampling",
                  "inputNode": {"id": -10}, "outputNode": {"id": -20}, "inputs": inputs, "outputs": outputs,
                  "widgets": [], "nodes": [node for node in nodes if node["id"] in inside],
                  "links": [dict(zip(fields, link)) for link in inner_links]}
    instance_node = {"id": instance, "type": definition["id"], "mode": 0, "widgets_values": promoted,
                     "inputs": [{"name": entry["name"], "type": entry["type"], "link": None} for entry in inputs],
                     "outputs": [{"name": entry["name"], "type": entry["type"]} for entry in outputs]}
    for link in outer_links:
        if link[3] == instance:
            instance_node["inputs"][link[4]]["link"] = link[0]
    for entry in instance_node["inputs"]:
        if entry["link"] is None:
            entry["widget"] = {"name": entry["name"]}
    return {**workflow, "nodes": [node for node in nodes if node["id"] not in inside] + [instance_node],
            "links": outer_links, "definitions": {"subgraphs": [definition]}}


SAMPLING = {"KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced", "CLIPTextEncode",
            "CLIPTextEncodeSDXL", "EmptyLatentImage", "LoraLoader"}


@pytest.mark.parametrize("name", BOTH)
def test_a_real_workflow_with_its_sampling_in_a_subgraph_reads_the_same(name):
    with Image.open(CORPUS / name) as image:
        workflow, from_graph = json.loads(image.text["workflow"]), parse_comfyui(image.text["prompt"])
    converted = into_subgraph(workflow, SAMPLING)
    assert converted["definitions"]["subgraphs"][0]["nodes"], "nothing moved into the subgraph"
    metadata = parse_comfyui_workflow(json.dumps(converted))
    fields = ("seed", "steps", "guidance", "sampler") if name == GROUP_NODES else FIELDS
    assert {field: getattr(metadata, field) for field in fields} == \
        {field: getattr(from_graph, field) for field in fields}


@pytest.mark.parametrize("name", BOTH)
def test_a_graph_queued_from_subgraphs_reads_as_the_flat_one(name):
    """The API graph names a subgraph's nodes "instance:node"; which sampler is final must not depend on it."""
    with Image.open(CORPUS / name) as image:
        graph = json.loads(image.text["prompt"])

    def renamed(key):
        return f"57:{key}"

    def relinked(value):
        return [renamed(value[0]), value[1]] if isinstance(value, list) and len(value) == 2 \
            and str(value[0]) in graph else value
    nested = {renamed(key): {**node, "inputs": {name: relinked(value) for name, value in node["inputs"].items()}}
              for key, node in graph.items()}
    assert parse_comfyui(json.dumps(nested)) == parse_comfyui(json.dumps(graph))


def z_image_template(seed_value=None, mode=0) -> dict:
    """A text-to-image subgraph as ComfyUI's own templates ship it (Z-Image-Turbo, front end 1.36): the whole
    pipeline inside, no subgraph inputs, the widgets shown on the instance through `proxyWidgets` (their values stay
    on the inner nodes), a bypassed ModelSampling node, and the prompt zeroed out as the negative."""
    inner = [
        node(30, "CLIPLoader", ["qwen_3_4b.safetensors", "lumina2", "default"]),
        node(29, "VAELoader", ["ae.safetensors"]),
        node(13, "EmptySD3LatentImage", [1280, 768, 1]),
        node(33, "ConditioningZeroOut", [], [("conditioning", "CONDITIONING", 32)]),
        node(8, "VAEDecode", [], [("samples", "LATENT", 14), ("vae", "VAE", 27)]),
        node(3, "KSampler", [918273645, "randomize", 8, 1, "res_multistep", "simple", 1],
             [("model", "MODEL", 13), ("positive", "CONDITIONING", 30), ("negative", "CONDITIONING", 33),
              ("latent_image", "LATENT", 17)]),
        node(27, "CLIPTextEncode", ["a tram crossing a bridge in the fog"], [("clip", "CLIP", 28)]),
        node(28, "UNETLoader", ["z_image_turbo_bf16.safetensors", "default"]),
        node(11, "ModelSamplingAuraFlow", [3], [("model", "MODEL", 26)], mode=4),
    ]
    links = [(32, 27, 0, 33, 0, "CONDITIONING"), (26, 28, 0, 11, 0, "MODEL"), (14, 3, 0, 8, 0, "LATENT"),
             (27, 29, 0, 8, 1, "VAE"), (13, 11, 0, 3, 0, "MODEL"), (30, 27, 0, 3, 1, "CONDITIONING"),
             (33, 33, 0, 3, 2, "CONDITIONING"), (17, 13, 0, 3, 3, "LATENT"), (28, 30, 0, 27, 0, "CLIP"),
             (16, 8, 0, -20, 0, "IMAGE")]
    fields = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")
    definition = {"id": "ef10a538-17cf-46fb-930c-5460c4cf7f0e", "version": 1, "name": "Text to Image",
                  "inputNode": {"id": -10}, "outputNode": {"id": -20}, "inputs": [],
                  "outputs": [{"name": "IMAGE", "type": "IMAGE", "linkIds": [16]}], "widgets": [], "nodes": inner,
                  "links": [dict(zip(fields, link)) for link in links]}
    instance = {"id": 83, "type": definition["id"], "mode": mode, "inputs": [],
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [134]}],
                "properties": {"proxyWidgets": [["27", "text"], ["13", "height"], ["13", "width"], ["3", "seed"]]},
                "widgets_values": []}
    return {"version": 0.4, "nodes": [instance, node(60, "SaveImage", ["z-image"], [("images", "IMAGE", 134)])],
            "links": [[134, 83, 0, 60, 0, "IMAGE"]], "definitions": {"subgraphs": [definition]}}


def test_a_subgraph_as_comfyuis_templates_ship_it():
    metadata = parse_comfyui_workflow(json.dumps(z_image_template()))
    assert (metadata.prompt, metadata.negative_prompt) == ("a tram crossing a bridge in the fog", "")
    assert (metadata.seed, metadata.steps, metadata.guidance, metadata.sampler) == (918273645, 8, 1, "res_multistep")
    assert (metadata.width, metadata.height, metadata.model_name) == (1280, 768, "z_image_turbo_bf16")
    assert set(workflow_graph(z_image_template())) == {"60", "83:30", "83:29", "83:13", "83:33", "83:8", "83:3",
                                                       "83:27", "83:28"}  # the bypassed node passes through
    assert parse_comfyui_workflow(json.dumps(z_image_template(mode=2))) is None  # a muted subgraph ran nothing


def test_nested_subgraphs_promoted_values_and_what_must_not_loop():
    """A subgraph in a subgraph: the seed and prompt are promoted twice, the outer instance's values win over the
    inner instance's and the node's own; the model comes in from the root graph through both boundaries. A
    definition that names itself is not followed."""
    fields = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")

    def links(*rows):
        return [dict(zip(fields, row)) for row in rows]
    sampler = {"id": "inner-sampler", "name": "Sampler", "inputNode": {"id": -10}, "outputNode": {"id": -20},
               "inputs": [{"name": "model", "type": "MODEL"}, {"name": "text", "type": "STRING"},
                          {"name": "seed", "type": "INT"}],
               "outputs": [{"name": "LATENT", "type": "LATENT"}],
               "nodes": [node(1, "CLIPTextEncode", ["stale prompt"], [("clip", "CLIP", None)]),
                         node(2, "EmptyLatentImage", [640, 448, 1]),
                         node(3, "KSampler", [1, "fixed", 6, 1.5, "euler", "sgm_uniform", 1.0],
                              [("model", "MODEL", 11), ("positive", "CONDITIONING", 12),
                               ("negative", "CONDITIONING", 12), ("latent_image", "LATENT", 13)]),
                         {"id": 4, "type": "inner-sampler", "mode": 0, "inputs": [], "widgets_values": []}],
               "links": links((11, -10, 0, 3, 0, "MODEL"), (12, 1, 0, 3, 1, "CONDITIONING"),
                              (13, 2, 0, 3, 3, "LATENT"), (14, 3, 0, -20, 0, "LATENT"),
                              (15, -10, 1, 1, 1, "STRING"), (16, -10, 2, 3, 4, "INT"))}
    sampler["nodes"][0]["inputs"].append({"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": 15})
    sampler["nodes"][2]["inputs"].append({"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": 16})
    outer = {"id": "outer", "name": "Generate", "inputNode": {"id": -10}, "outputNode": {"id": -20},
             "inputs": [{"name": "model", "type": "MODEL"}, {"name": "text", "type": "STRING"},
                        {"name": "seed", "type": "INT"}],
             "outputs": [{"name": "LATENT", "type": "LATENT"}],
             "nodes": [{"id": 7, "type": "inner-sampler", "mode": 0, "widgets_values": ["inner's prompt", 2, "fixed"],
                        "inputs": [{"name": "model", "type": "MODEL", "link": 21},
                                   {"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": 22},
                                   {"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": 23}]}],
             "links": links((21, -10, 0, 7, 0, "MODEL"), (22, -10, 1, 7, 1, "STRING"), (23, -10, 2, 7, 2, "INT"),
                            (24, 7, 0, -20, 0, "LATENT"))}
    workflow = {"nodes": [node(1, "CheckpointLoaderSimple", ["juggernaut.safetensors"]),
                          {"id": 5, "type": "outer", "mode": 0, "widgets_values": ["a kite over dunes", 31337],
                           "inputs": [{"name": "model", "type": "MODEL", "link": 1},
                                      {"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": None},
                                      {"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": None}]},
                          node(6, "VAEDecode", [], [("samples", "LATENT", 2)])],
                "links": [[1, 1, 0, 5, 0, "MODEL"], [2, 5, 0, 6, 0, "LATENT"]],
                "definitions": {"subgraphs": [outer, sampler]}}
    graph = workflow_graph(workflow)
    assert graph["5:7:3"]["inputs"]["model"] == ["1", 0] and graph["6"]["inputs"]["samples"] == ["5:7:3", 0]
    assert "5:7:4" not in graph  # the definition inside itself
    metadata = parse_comfyui_workflow(json.dumps(workflow))
    assert (metadata.prompt, metadata.seed, metadata.steps, metadata.guidance) == ("a kite over dunes", 31337, 6, 1.5)
    assert (metadata.model_name, metadata.width, metadata.height) == ("juggernaut", 640, 448)
    inner_values = json.loads(json.dumps(workflow))
    inner_values["nodes"][1]["widgets_values"] = []  # the outer instance keeps none: the inner instance's stand
    assert parse_comfyui_workflow(json.dumps(inner_values)).prompt == "inner's prompt"
    assert parse_comfyui_workflow(json.dumps(inner_values)).seed == 2  # its seed's "fixed" skipped


def test_a_subgraphs_inputs_of_one_name_are_told_apart_by_place():
    """Two subgraph inputs may share a name (both prompts' "text"); the front end feeds each by its place."""
    fields = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")
    inner = [node(1, "CLIPTextEncode", ["stale"], [("clip", "CLIP", None)]),
             node(2, "CLIPTextEncode", ["stale"], [("clip", "CLIP", None)]),
             node(3, "EmptyLatentImage", [512, 512, 1]),
             node(4, "KSampler", [5, "fixed", 4, 1.0, "euler", "normal", 1.0],
                  [("model", "MODEL", None), ("positive", "CONDITIONING", 11), ("negative", "CONDITIONING", 12),
                   ("latent_image", "LATENT", 13)])]
    for text_node, link in ((inner[0], 14), (inner[1], 15)):
        text_node["inputs"].append({"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": link})
    definition = {"id": "prompts", "inputNode": {"id": -10}, "outputNode": {"id": -20},
                  "inputs": [{"name": "text", "type": "STRING"}, {"name": "text", "type": "STRING"}], "outputs": [],
                  "nodes": inner, "links": [dict(zip(fields, link)) for link in (
                      (11, 1, 0, 4, 1, "CONDITIONING"), (12, 2, 0, 4, 2, "CONDITIONING"), (13, 3, 0, 4, 3, "LATENT"),
                      (14, -10, 0, 1, 1, "STRING"), (15, -10, 1, 2, 1, "STRING"))]}
    instance = {"id": 9, "type": "prompts", "mode": 0, "widgets_values": ["", ""],
                "inputs": [{"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": 1},
                           {"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": 2}]}
    workflow = {"nodes": [node(7, "PrimitiveStringMultiline", ["a castle at dawn"]),
                          node(8, "PrimitiveStringMultiline", ["blurry"]), instance],
                "links": [[1, 7, 0, 9, 0, "STRING"], [2, 8, 0, 9, 1, "STRING"]],
                "definitions": {"subgraphs": [definition]}}
    metadata = parse_comfyui_workflow(json.dumps(workflow))
    assert (metadata.prompt, metadata.negative_prompt, metadata.seed) == ("a castle at dawn", "blurry", 5)
