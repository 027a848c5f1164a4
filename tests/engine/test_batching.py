"""Several prompts as one batch: the same images as one by one, and each result is its own request's."""

from __future__ import annotations

import numpy as np
import pytest

from hypersd_desktop.engine import GenerationRequest, LoraSpec
from hypersd_desktop.engine.backend import batch_key
from hypersd_desktop.engine.torch_engine import TorchEngine

PROMPTS = ("a lighthouse on a cliff", "a red fox in snow", "the cat " * 60)  # the last is over 77 tokens


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_prompts_run_together_give_the_images_they_give_alone(architecture, tiny_sd15, tiny_sdxl, hyper_lora):
    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    lora = hyper_lora("Hyper-SDXL-2steps-lora" if architecture == "sdxl" else "Hyper-SD15-2steps-lora")
    template = GenerationRequest(prompt="", base_model=str(base), loras=(LoraSpec(str(lora)),), steps=2, width=64,
                                 height=64, negative_prompt="blurry")
    requests = [template.replace(prompt=prompt, seed=seed) for prompt, seed in zip(PROMPTS, (7, 3, 50))]
    engine = TorchEngine()
    together = engine.generate_batch(requests)
    alone = [engine.generate(request)[0] for request in requests]
    assert [result.request for result in together] == requests
    assert [result.seed for result in together] == [7, 3, 50]
    images = [np.asarray(result.image, dtype=np.int16) for result in together]
    for ours, theirs in zip(images, alone):
        assert np.abs(ours - np.asarray(theirs.image, dtype=np.int16)).max() <= 1
    assert np.abs(images[0] - images[1]).max() > 10  # three prompts, three images
    assert not any("dropped" in warning for result in together for warning in result.warnings), "read whole"


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_guided_prompts_with_a_negative_and_weights_run_together_as_alone(architecture, tiny_sd15, tiny_sdxl,
                                                                         hyper_lora):
    """With guidance the negative prompt goes with every prompt of the batch (a plain string beside a list of
    prompts once made diffusers raise); a weighted prompt, one of two windows and an edited one (run apart, as
    its embeddings change between steps) run beside plain ones."""
    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    lora = hyper_lora("Hyper-SDXL-8steps-CFG-lora" if architecture == "sdxl" else "Hyper-SD15-8steps-CFG-lora")
    template = GenerationRequest(prompt="", base_model=str(base), loras=(LoraSpec(str(lora)),), steps=2, width=64,
                                 height=64, negative_prompt="blurry", guidance=5.0)
    texts = ("a lighthouse", "a (red:1.3) fox [in snow]", "a cliff", "the cat " * 60, "a [cat:dog:0.4] on a cliff")
    requests = [template.replace(prompt=text, seed=seed) for seed, text in enumerate(texts)]
    engine = TorchEngine()
    batches = []
    run = engine._generate
    engine._generate = lambda request, *args: batches.append(request.batch_size) or run(request, *args)
    together = engine.generate_batch(requests)
    engine._generate = run
    assert sorted(batches) == [1, 1, 3]  # one window (weights too), two windows, and the edited prompt apart
    assert [result.request for result in together] == requests
    for result, request in zip(together, requests):
        (alone,) = engine.generate(request)
        difference = np.abs(np.asarray(result.image, np.int16) - np.asarray(alone.image, np.int16)).max()
        assert difference <= 1, (request.prompt, difference)


def test_only_requests_that_differ_in_prompt_and_seed_share_a_batch(tiny_sd15):
    request = GenerationRequest(prompt="a", base_model=str(tiny_sd15), steps=1, width=64, height=64)
    assert batch_key(request) == batch_key(request.replace(prompt="b", seed=9))
    for other in (request.replace(steps=2), request.replace(width=128), request.replace(negative_prompt="x"),
                  request.replace(batch_size=2)):
        assert batch_key(other) != batch_key(request)
    assert batch_key(request.replace(init_image="0" * 64, strength=0.5)) is None
    with pytest.raises(ValueError, match="differ only in prompt and seed"):
        TorchEngine().generate_batch([request, request.replace(steps=2)])
