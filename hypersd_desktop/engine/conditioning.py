"""Prompt embeddings for the prompts the diffusers pipelines cannot encode themselves: A1111 emphasis, BREAK,
prompts past the text encoder's window (the syntax is in `prompts`), and clip skip, which diffusers applies to
the prompt but not to the negative prompt.

They are made as the pipelines make theirs, one window at a time: SD1.5 takes the text encoder's last hidden
state; SDXL puts both encoders' penultimate hidden states side by side and takes the second encoder's pooled
projection, from the first window as A1111 does. The windows' embeddings are joined along the sequence.
"""

from __future__ import annotations

import torch

from hypersd_desktop.core.vocab import Architecture
from hypersd_desktop.engine import prompts
from hypersd_desktop.engine.embeddings import spelled_out
from hypersd_desktop.engine.prompts import Chunk


def needs_encoding(pipe, texts: list[str]) -> bool:
    """Whether any of `texts` needs this module: the pipeline would misread or cut it."""
    convert = spelled_out(pipe, pipe.tokenizer)
    return any(text and prompts.needs_chunks(pipe.tokenizer, text, convert) for text in texts)


def window_count(pipe, text: str) -> int:
    """How many windows `text` takes; prompts run together in one batch must take the same number."""
    convert = spelled_out(pipe, pipe.tokenizer)
    if not text or not prompts.needs_chunks(pipe.tokenizer, text, convert):
        return 1
    return min(len(prompts.chunks(pipe.tokenizer, text, convert)), prompts.MAX_WINDOWS)


def length_warnings(pipe, prompt: str, negative_prompt: str, steps: int | None = None) -> list[str]:
    """What the windows read leave out of the prompt and of the negative ("" where it is not used), over the
    texts an edited prompt reads in `steps` steps."""
    return prompts.length_warnings(pipe.tokenizer, prompt, negative_prompt,
                                   convert=spelled_out(pipe, pipe.tokenizer), steps=steps)


def prompt_arguments(pipe, architecture: str, texts: list[str], negative_prompt: str, guided: bool,
                     clip_skip: int = 1) -> dict:
    """The pipeline's `prompt_embeds` (one row per text of `texts`) and, when `guided` (classifier-free guidance
    runs), `negative_prompt_embeds`; for SDXL the pooled embeddings too. Every row is padded with the empty
    prompt's window to the longest, as A1111 pads a prompt and its negative. `clip_skip` (SD1.5, A1111's count)
    reads the text encoder that many layers from its end, through its final layer norm, as diffusers does."""
    return run_arguments(pipe, architecture, [(texts, negative_prompt)], guided, clip_skip)[0]


@torch.no_grad()
def run_arguments(pipe, architecture: str, runs: list[tuple[list[str], str]], guided: bool,
                  clip_skip: int = 1) -> list[dict]:
    """`prompt_arguments` of each (texts, negative prompt) of `runs`, the prompts of the runs of steps of an
    edited prompt (`prompt_editing`): all padded to one length, so that each can replace the one before in the
    pipeline's tensors between steps."""
    sdxl = architecture == Architecture.SDXL
    parts = [(pipe.tokenizer, pipe.text_encoder)] + ([(pipe.tokenizer_2, pipe.text_encoder_2)] if sdxl else [])
    zero = [sdxl and not negative and pipe.config.force_zeros_for_empty_prompt for _, negative in runs]
    encoded = [text for (texts, negative), zero_negative in zip(runs, zero)
               for text in [*texts, *([negative] if guided and not zero_negative else [])]]
    device = pipe._execution_device
    per_encoder, pooled = [], None
    for tokenizer, encoder in parts:
        convert = spelled_out(pipe, tokenizer)
        windows = prompts.padded([prompts.chunks(tokenizer, text, convert)[: prompts.MAX_WINDOWS] for text in encoded],
                                 prompts.chunks(tokenizer, "")[0])
        # window k of every text in one batch, as the pipeline batches its prompts
        outputs = [_encode(encoder, column, device, sdxl, clip_skip) for column in zip(*windows)]
        per_encoder.append(torch.cat([hidden for hidden, _ in outputs], dim=1))
        pooled = outputs[0][1]  # SDXL's second encoder's pooled projection, from the first window as A1111 takes it
    dtype = (pipe.text_encoder_2 if sdxl else pipe.text_encoder).dtype
    embeds = torch.cat(per_encoder, dim=-1).to(dtype)
    pooled = pooled.to(dtype) if sdxl else None
    arguments, start = [], 0
    for (texts, _), zero_negative in zip(runs, zero):
        count = len(texts)
        rows = slice(start, start + count)
        run = {"prompt_embeds": embeds[rows]}
        if sdxl:
            run["pooled_prompt_embeds"] = pooled[rows]
        start += count
        if guided:
            if zero_negative:
                negative, negative_pooled = torch.zeros_like(embeds[:1]), torch.zeros_like(pooled[:1])
            else:
                negative, negative_pooled = embeds[start:start + 1], (pooled[start:start + 1] if sdxl else None)
                start += 1
            run["negative_prompt_embeds"] = negative.repeat(count, 1, 1)
            if sdxl:
                run["negative_pooled_prompt_embeds"] = negative_pooled.repeat(count, 1)
        arguments.append(run)
    return arguments


def _encode(encoder, windows: tuple[Chunk, ...], device, penultimate: bool,
            clip_skip: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One window of each text, as a batch: the hidden states (texts × 77 × width), each text's weighted, and
    the encoder's first output (the pooled projection for SDXL's second encoder)."""
    ids = torch.tensor([window.ids for window in windows], device=device)
    if penultimate:
        output = encoder(ids, output_hidden_states=True)
        hidden = output.hidden_states[-2]
    else:
        mask = None
        if getattr(encoder.config, "use_attention_mask", False):  # as the pipeline: the tokens up to the end token
            mask = torch.tensor([[1] * w.length + [0] * (len(w.ids) - w.length) for w in windows], device=device)
        output = encoder(ids, attention_mask=mask, output_hidden_states=clip_skip > 1)
        hidden = output[0]
        if clip_skip > 1:
            hidden = encoder.text_model.final_layer_norm(output.hidden_states[-clip_skip])
    if any(window.weighted for window in windows):
        rows = []
        for row, window in zip(hidden, windows):  # each text keeps its own mean, whatever it is batched with
            if window.weighted:
                weights = torch.tensor(window.weights, device=device, dtype=torch.float32).view(1, -1, 1)
                row = prompts.emphasise(row[None].float(), weights)[0].to(hidden.dtype)
            rows.append(row)
        hidden = torch.stack(rows)
    return hidden, output[0]
