"""Write the CLIP BPE tokenizer files bundled in resources/configs/*/tokenizer*/.

Single-file checkpoints carry no tokenizer, and nothing may be fetched at run time, so the
app ships CLIP's byte-level BPE vocabulary. Its source is the merges list distributed with
open_clip_torch on PyPI (`open_clip/bpe_simple_vocab_16e6.txt.gz`, MIT licence). The vocabulary
is built the way CLIP builds it: the 256 byte symbols, the same with an end-of-word marker,
one token per merge (the first 48,894), then the start and end tokens: 49,408 in all.

    pip download --no-deps open_clip_torch -d /tmp/oc
    python tools/make_clip_tokenizer.py /tmp/oc/open_clip_torch-*.whl
"""

from __future__ import annotations

import gzip
import json
import sys
import zipfile
from pathlib import Path

from transformers.models.clip.tokenization_clip import bytes_to_unicode

ROOT = Path(__file__).resolve().parent.parent
MERGE_COUNT = 49152 - 256 - 2


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as archive:
        lines = gzip.decompress(archive.read("open_clip/bpe_simple_vocab_16e6.txt.gz")).decode("utf-8").split("\n")
    merges = lines[1 : MERGE_COUNT + 1]
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [symbol + "</w>" for symbol in symbols] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(tokens)}
    assert len(vocab) == 49408, len(vocab)
    for folder in ("sd15/tokenizer", "sdxl/tokenizer", "sdxl/tokenizer_2"):
        target = ROOT / "resources" / "configs" / folder
        target.mkdir(parents=True, exist_ok=True)
        (target / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
        (target / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
