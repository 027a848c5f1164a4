"""Text files as people's editors save them: the encoding is not said, and has to be told from the bytes.

A job file typed in Notepad, exported from Excel on Windows or on a Mac, or written by PowerShell; a parameters
text beside an image that someone opened and saved again. Each may be UTF-8, UTF-16 or UTF-32 (with or without a
byte order mark), or a one-byte "ANSI" encoding; `saved_text` reads them all.
"""

from __future__ import annotations

import codecs

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def saved_text(raw: bytes) -> str:
    """A text file's text in whatever its editor saved it in: UTF-8; UTF-16 (Windows PowerShell's `>` and
    `Out-File`, Notepad's "Unicode", Excel's "Unicode Text"), with or without its byte order mark; UTF-32 with
    one; else an "ANSI" file from an older Windows editor (cp1252) or Mac Roman, which Excel for Mac's plain "CSV"
    still writes, whichever reads as words (`_reads_as_words`)."""
    for bom, encoding in _BOMS:  # UTF-32 LE's mark begins like UTF-16 LE's: it is tried first
        if raw.startswith(bom):
            return raw[len(bom):].decode(encoding, errors="replace")
    if len(raw) >= 4 and raw.count(0) >= len(raw) // 4:  # no text has NULs; UTF-16's Latin letters do, every other
        return raw.decode("utf-16-le" if raw[1::2].count(0) >= raw[0::2].count(0) else "utf-16-be", errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        windows, mac = raw.decode("cp1252", errors="replace"), raw.decode("mac_roman")
        return mac if _reads_as_words(mac) > _reads_as_words(windows) else windows


_QUOTES, _DASHES = set("“”‘’„«»"), set("–—…")
# The accented letters of the languages these two encodings were made for (not ƒ, Š, Ž, Ÿ, ı: rare anywhere)
_LETTERS = set("àâäáãåæçèéêëìíîïñòóôöõøùúûüýÿßœÀÂÄÁÃÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÖÕØÙÚÛÜÝŒ")
_ONE_LETTER_WORDS = set("àèåÀÈÅ")  # French's à, Italian's è, Swedish's å


def _reads_as_words(text: str) -> int:
    """How well `text`'s non-ASCII characters fit what is beside them, one point each way: an accented capital
    where a word starts or in capitals (Übel, ÉTÉ), a small letter beside small letters (été, ñ), a letter that is
    a word (à), a quote on a word's edge (“Hallo”, l’été), a dash between words, a euro sign by a number, ™ or ° after one. cp1252 and
    Mac Roman put accented letters and punctuation in each other's places, and each read as the other makes rare
    letters (ƒ, Ž, Ÿ), capitals, symbols and dashes inside words (lÈt, Gr§e, ni–o), letters alone, or a byte it has
    no character for."""
    score = 0
    for index, char in enumerate(text):
        if char.isascii():
            continue
        before = text[index - 1] if index else " "
        after = text[index + 1] if index + 1 < len(text) else " "
        if char == "\ufffd":  # a byte the encoding has no character for
            score -= 2
            continue
        if char.isalpha():
            if char not in _LETTERS:
                fits = False
            elif not (before.isalpha() or after.isalpha()):
                fits = char in _ONE_LETTER_WORDS
            else:
                fits = not before.islower() if char.isupper() else before.islower() or after.islower()
        elif char in _QUOTES:
            fits = before.isalnum() != after.isalnum() or char == "’" and before.isalpha() and after.isalpha()
        elif char in _DASHES:
            fits = not (before.isalpha() and after.isalpha())
        elif char == "€":
            fits = not (before.isalpha() or after.isalpha())
        elif char in "™®°":  # after a name or a number
            fits = before.isalnum() and not after.isalnum()
        elif char in "¡¿":  # before a Spanish sentence
            fits = not before.isalnum() and after.isalpha()
        else:
            fits = None if not (before.isalpha() and after.isalpha()) else False  # a symbol inside a word
        score += 0 if fits is None else 1 if fits else -1
    return score
