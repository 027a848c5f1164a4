"""CLIP's tokenizer in plain Python, for counting a prompt's tokens in the window, which has no compute runtime.

It reads text as transformers' `CLIPTokenizer` does where ftfy is not installed (the compute runtime has none),
so the count is the engine's: the text cleaned (control characters dropped, every space one space), a space
around each CJK ideograph, NFC, lower case; then split into contractions ('s 't 're 've 'm 'll 'd), runs of
letters, single digits and runs of other characters; each piece's UTF-8 bytes spelled as characters and merged by
the byte-pair merges, the piece's last symbol marked `</w>`. tests/test_clip_tokenizer.py checks it against
transformers, token for token. It answers the few calls `engine.prompts.chunks` makes of a tokenizer.

SD1.5's text encoder and both of SDXL's read one vocabulary (resources/configs/*/tokenizer*), 49,408 tokens.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hypersd_desktop.core.resources import resources_dir

START, END = "<|startoftext|>", "<|endoftext|>"
CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")
CLEAN_UPS = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
             (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))
# A combining mark that the pattern, matched ignoring case, finds in neither letters nor other characters (its
# case folding is the letter iota): it parts pieces as a space does (tests/test_clip_tokenizer.py looks for others).
SKIPPED = "\u0345"
MERGES = 49152 - 256 - 2  # the merges the vocabulary was made with: the file's first line is its version
_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _byte_characters() -> dict[int, str]:
    """Each byte as a printable character: the printable Latin-1 ones as themselves, the rest from U+0100 on."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = {byte: chr(byte) for byte in kept}
    extra = (byte for byte in range(256) if byte not in chars)
    chars.update((byte, chr(256 + n)) for n, byte in enumerate(extra))
    return dict(sorted(chars.items()))


BYTE_CHARS = _byte_characters()
CHAR_BYTES = {char: byte for byte, char in BYTE_CHARS.items()}


@dataclass(frozen=True)
class Encoded:
    input_ids: list  # a text's ids, or a list of them for a list of texts (as a transformers tokenizer answers)


class ClipTokenizer:
    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], pad_token: str = END) -> None:
        self.vocab = vocab
        self.words = {index: token for token, index in vocab.items()}
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.bos_token_id, self.eos_token_id = vocab[START], vocab[END]
        self.unk_token_id = vocab[END]
        self.pad_token_id = vocab.get(pad_token, self.eos_token_id)
        self._pieces: dict[str, tuple[int, ...]] = {}

    @classmethod
    def load(cls, folder: Path) -> ClipTokenizer:
        """The tokenizer of a diffusers `tokenizer` folder (vocab.json, merges.txt, special_tokens_map.json)."""
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        lines = (folder / "merges.txt").read_text(encoding="utf-8").strip().split("\n")[1:MERGES + 1]
        merges = [(first, second) for first, second in (line.split() for line in lines)]
        try:
            pad = json.loads((folder / "special_tokens_map.json").read_text(encoding="utf-8")).get("pad_token", END)
        except (OSError, ValueError):
            pad = END
        return cls(vocab, merges, pad if isinstance(pad, str) else END)

    def encode(self, text: str) -> list[int]:
        """`text`'s ids, without the start and end tokens."""
        ids: list[int] = []
        for piece in _pieces(_normalised(text)):
            found = self._pieces.get(piece)
            if found is None:
                found = self._pieces[piece] = self._encode_piece(piece)
            ids.extend(found)
        return ids

    def _encode_piece(self, piece: str) -> tuple[int, ...]:
        if piece in (START, END):
            return (self.vocab[piece],)
        symbols = [BYTE_CHARS[byte] for byte in piece.encode("utf-8")]
        symbols[-1] += "</w>"
        while len(symbols) > 1:  # the pair merged earliest first, everywhere it stands, until none merges
            pairs = {(a, b) for a, b in zip(symbols, symbols[1:])}
            best = min(pairs, key=lambda pair: self.ranks.get(pair, len(self.ranks)))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return tuple(self.vocab.get(symbol, self.unk_token_id) for symbol in symbols)

    def __call__(self, texts: str | list[str], **_options) -> Encoded:
        if isinstance(texts, str):
            return Encoded(self.encode(texts))
        return Encoded([self.encode(text) for text in texts])

    def convert_tokens_to_ids(self, token: str) -> int:
        return self.vocab.get(token, self.unk_token_id)

    def decode(self, ids, clean_up_tokenization_spaces: bool = True) -> str:
        """The text of `ids` (lower case, as read), words parted by spaces; cleaned up, no space before a comma or
        a full stop, as transformers cleans it."""
        symbols = "".join(self.words.get(index, "") for index in ids)
        text = bytes(CHAR_BYTES[char] for char in symbols).decode("utf-8", errors="replace")
        text = text.replace("</w>", " ").strip()
        if clean_up_tokenization_spaces:
            for spaced, joined in CLEAN_UPS:
                text = text.replace(spaced, joined)
        return text


@lru_cache(maxsize=1)
def clip_tokenizer() -> ClipTokenizer:
    """The tokenizer of the bundled SD1.5 configuration (SDXL's encoders read the same vocabulary)."""
    return ClipTokenizer.load(resources_dir() / "configs" / "sd15" / "tokenizer")


def _normalised(text: str) -> str:
    """`text` as transformers' BasicTokenizer leaves it for CLIP (no accents stripped, no splits at punctuation)."""
    out = []
    for char in text:
        code = ord(char)
        category = unicodedata.category(char)
        if code in (0, 0xFFFD) or category.startswith("C") and char not in "\t\n\r":
            continue
        if char in " \t\n\r" or category == "Zs":
            out.append(" ")
        elif any(low <= code <= high for low, high in _CJK):
            out.append(f" {char} ")
        else:
            out.append(char)
    words = unicodedata.normalize("NFC", "".join(out)).split()
    return " ".join(" ".join(word.lower() for word in words).split())


def _kind(char: str) -> str:
    """"L" a letter, "N" a number, " " what parts pieces, "P" any other character."""
    category = unicodedata.category(char)
    if char.isspace() or char == SKIPPED:
        return " "
    return "L" if category[0] == "L" else "N" if category[0] == "N" else "P"


def _pieces(text: str) -> list[str]:
    """The pieces CLIP's pattern finds in normalised text: its special tokens, contractions, runs of letters,
    single digits (any number character), runs of the other characters; spaces part them."""
    pieces, i = [], 0
    while i < len(text):
        char = text[i]
        # matched ignoring case, where the long s is an s ("'ſ" is the contraction "'s")
        ahead = text[i:i + len(START)].replace("ſ", "s") if char in "<'" else ""
        special = next((token for token in (START, END) if ahead.startswith(token)), None)
        contraction = next((c for c in CONTRACTIONS if ahead.startswith(c)), None) if char == "'" else None
        kind = _kind(char)
        if special or contraction:
            end = i + len(special or contraction)
        elif kind == " ":
            i += 1
            continue
        elif kind == "N":
            end = i + 1
        else:
            end = i + 1
            while end < len(text) and _kind(text[end]) == kind:
                end += 1
        pieces.append(text[i:end])
        i = end
    return pieces
