"""Describing a picture in a prompt's words: the booru tags a WD tagger sees in it (SmilingWolf's WD 1.4 and v3
taggers, as A1111's Tagger extension, ComfyUI's WD14 Tagger and kohya's training scripts run them).

A tagger is an ONNX model and its tag list: a folder holding `model.onnx` and `selected_tags.csv` (as the hub
publishes them), or `NAME.onnx` with `NAME.csv` beside it (ComfyUI's WD14 Tagger keeps them so). The model takes
one picture of its input size, NHWC, BGR, 0–255, with no normalisation; the picture is laid on white (where it is
transparent and around it, to a square) and resized to the input with bicubic filtering. It scores every tag of the
list, in the list's order; the list says each tag's category: 9 a rating (general, sensitive, questionable,
explicit), 4 a character, 0 and the rest general tags.

A tag goes into the prompt where its score passes the threshold (0.35, as the taggers' own demo; a character's
0.85), characters first, then general tags, each by score. Its underscores become spaces, as prompts are typed,
except in the emoticons whose underscore is a mouth ("^_^"), and its brackets are escaped (`\\(`), which the prompt
parser would read as weights. ONNX files hold no code to run; nothing here unpickles.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from dataclasses import dataclass
from pathlib import Path

from hypersd_desktop.core.errors import AppError, InputError, ModelFormatError

MODEL_FILE = "model.onnx"
TAGS_FILE = "selected_tags.csv"
THRESHOLD = 0.35
CHARACTER_THRESHOLD = 0.85
RATING, CHARACTER = 9, 4  # the tag list's categories; every other one is a general tag
DEFAULT_SIDE = 448  # the WD taggers' input, where a model leaves its size open
# Tags whose underscore is part of the face they draw, kept as written
EMOTICONS = frozenset(("0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<", "3_3", "6_9", ">_o",
                       "@_@", "^_^", "o_o", "u_u", "x_x", "|_|", "||_||"))
MAX_TAG_LIST_BYTES = 64 * 1024 * 1024  # a tag list is a few hundred kilobytes; a bigger one is not one


@dataclass(frozen=True)
class Tag:
    name: str  # as the tag list writes it ("long_hair")
    score: float
    category: int = 0

    @property
    def words(self) -> str:
        """The tag as a prompt writes it: "long hair", "^_^", "\\(cosplay\\)"."""
        text = self.name if self.name in EMOTICONS else self.name.replace("_", " ")
        return "".join(f"\\{c}" if c in "\\()[]" else c for c in text)


@dataclass(frozen=True)
class Description:
    """What a tagger saw: the tags over their thresholds (characters, then general tags, each by score) and the
    likeliest rating ("" where the tag list has none)."""

    tags: tuple[Tag, ...] = ()
    rating: str = ""
    rating_score: float = 0.0

    @property
    def prompt(self) -> str:
        return ", ".join(tag.words for tag in self.tags)

    def prompt_after(self, first: str) -> str:
        """The prompt with the words `first` (commas between) before its tags, a tag among them not written again."""
        words = [word.strip() for word in first.split(",") if word.strip()]
        keys = {tag_key(word) for word in words}
        return ", ".join([*words, *(tag.words for tag in self.tags if tag_key(tag.name) not in keys)])

    def without(self, excluded: str) -> Description:
        """The description without the tags `excluded` names (commas between; written as the tag list does or as a
        prompt does, in any case: "simple_background", "White Background", "cosplay \\(costume\\)"), as A1111's
        Tagger leaves out its "exclude tags"."""
        left_out = {tag_key(name) for name in excluded.split(",") if name.strip()}
        return dataclasses.replace(self, tags=tuple(tag for tag in self.tags if tag_key(tag.name) not in left_out))


def tag_key(text: str) -> str:
    """One spelling of a tag however it is written: its list's ("long_hair") or a prompt's ("Long hair",
    "cosplay \\(costume\\)")."""
    return re.sub(r"\\(.)", r"\1", text).strip().lower().replace(" ", "_")


def tagger_files(path: str | Path) -> tuple[Path, Path]:
    """The model and tag list of the tagger at `path`: a folder, or the `.onnx` file with its `.csv` beside it."""
    path = Path(path)
    if path.is_dir():
        return path / MODEL_FILE, path / TAGS_FILE
    return path, path.with_suffix(".csv")


def is_tagger(path: str | Path) -> bool:
    """Whether `path` is a tagger as `tagger_files` reads one (both files there; nothing is read)."""
    model, tags = tagger_files(path)
    return Path(path).suffix.lower() in ("", ".onnx") and model.is_file() and tags.is_file()


def read_tag_list(path: Path) -> tuple[tuple[str, int], ...]:
    """(name, category) of each tag of a tag list, in its order. Raises `ModelFormatError` for a file that is no
    tag list (no `name` column, a category that is no number)."""
    try:
        if path.stat().st_size > MAX_TAG_LIST_BYTES:
            raise ModelFormatError(f"{path.name} is {path.stat().st_size / 1e6:.0f} MB: not a tagger's tag list.")
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ModelFormatError(f"{path.name} is not text: not a tagger's tag list.") from None
    except OSError as error:
        raise ModelFormatError(f"{path} cannot be read: {error.strerror or error}.") from None
    rows = csv.DictReader(io.StringIO(text))
    if not rows.fieldnames or "name" not in rows.fieldnames:
        raise ModelFormatError(f"{path.name} has no `name` column: not a tagger's tag list (selected_tags.csv).")
    tags = []
    for number, row in enumerate(rows, start=2):
        try:  # a list written by pandas may say 0.0
            category = int(float(row.get("category") or 0))
        except (ValueError, OverflowError):
            raise ModelFormatError(f"{path.name}, line {number}: the category {row.get('category')!r} is no "
                                   "number.") from None
        tags.append(((row["name"] or "").strip(), category))
    if not tags:
        raise ModelFormatError(f"{path.name} lists no tags.")
    return tuple(tags)


def picture_input(picture, side: int):
    """`picture` as a WD tagger reads it: laid on white, padded with white to a square, resized to `side` (bicubic),
    BGR, float32 0–255, shaped (1, side, side, 3)."""
    import numpy as np
    from PIL import Image

    rgba = picture.convert("RGBA")
    flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    flat.alpha_composite(rgba)
    longest = max(flat.size)
    square = Image.new("RGB", (longest, longest), (255, 255, 255))
    square.paste(flat.convert("RGB"), ((longest - flat.width) // 2, (longest - flat.height) // 2))
    if longest != side:
        square = square.resize((side, side), Image.Resampling.BICUBIC)
    return np.ascontiguousarray(np.asarray(square, dtype=np.float32)[:, :, ::-1])[None]


def tagger_provider(device: str):
    """The ONNX Runtime provider a tagger runs on for `device`: its own where ONNX Runtime has one here (DirectML,
    CUDA), else the CPU's (for Apple's GPUs, and a CUDA torch beside ONNX Runtime's CPU build). Raises `InputError`
    where ONNX Runtime is not installed."""
    from hypersd_desktop.core.vocab import Device
    from hypersd_desktop.engine.onnx.providers import choose_provider

    try:
        return choose_provider(device)
    except InputError:
        return choose_provider(Device.CPU)


class Tagger:
    """One tagger, loaded: `describe` a picture with it. `provider` is an ONNX Runtime provider
    (engine/onnx/providers.py); the CPU's by default."""

    def __init__(self, path: str | Path, provider=None) -> None:
        from hypersd_desktop.engine.onnx.providers import CPU

        self.path = Path(path)
        model, tags = tagger_files(self.path)
        for needed in (model, tags):
            if not needed.is_file():
                raise InputError(f"The tagger at {self.path} lacks {needed.name}; download or import it again.")
        self.tags = read_tag_list(tags)
        self.provider = provider or CPU
        try:
            self.session = self.provider.session(model)
        except AppError:
            raise
        except Exception as error:  # noqa: BLE001 - ONNX Runtime's errors for a damaged or foreign file
            raise ModelFormatError(f"{model.name} is not an ONNX model ONNX Runtime can run ({error}); download or "
                                   "import the tagger again.") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape = list(inputs[0].shape) if inputs else []
        if len(inputs) != 1 or len(shape) != 4 or isinstance(shape[3], int) and shape[3] != 3:
            raise ModelFormatError(f"{model.name} does not take one picture as a WD tagger does (height, width and "
                                   f"3 colours; it takes {[i.shape for i in inputs]}): a tagger of another kind.")
        self.side = next((size for size in shape[1:3] if isinstance(size, int) and size > 0), DEFAULT_SIDE)
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        self.half = inputs[0].type == "tensor(float16)"  # a model exported in fp16 takes its picture so

    def describe(self, picture, threshold: float = THRESHOLD, character_threshold: float = CHARACTER_THRESHOLD
                 ) -> Description:
        import numpy as np

        for name, value in (("threshold", threshold), ("character threshold", character_threshold)):
            if not 0 <= value <= 1:
                raise InputError(f"A tag's {name} is a score from 0 to 1; got {value:g}.")
        array = picture_input(picture, self.side)
        scores = np.asarray(self.session.run([self.output_name], {self.input_name: array.astype(np.float16) if self.half
                                                                  else array})[0], dtype=np.float64).reshape(-1)
        if scores.size != len(self.tags):
            raise ModelFormatError(f"The tagger at {self.path} scores {scores.size} tags but its list holds "
                                   f"{len(self.tags)}: its model and tag list are of two taggers.")
        if scores.min() < 0 or scores.max() > 1:  # a model that ends before its sigmoid gives logits
            scores = 1 / (1 + np.exp(-np.clip(scores, -60, 60)))
        ratings, characters, general = [], [], []
        for (name, category), score in zip(self.tags, scores.tolist()):
            tag = Tag(name, round(score, 4), category)
            if category == RATING:
                ratings.append(tag)
            elif name and score > (character_threshold if category == CHARACTER else threshold):
                (characters if category == CHARACTER else general).append(tag)
        rating = max(ratings, key=lambda tag: tag.score, default=None)
        chosen = sorted(characters, key=lambda tag: -tag.score) + sorted(general, key=lambda tag: -tag.score)
        return Description(tuple(chosen), rating.name if rating else "", rating.score if rating else 0.0)
