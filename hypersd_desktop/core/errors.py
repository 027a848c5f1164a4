"""Typed errors whose message a person can act on.

Core code raises these at the source; the CLI prints the message on one line and exits with
status 2, and the GUI shows it in its one error banner. Anything else that escapes is a bug.
"""

from __future__ import annotations


class AppError(Exception):
    """An error with a short message that says what went wrong and what to do."""


class InputError(AppError):
    """The request or a file named in it cannot be used as given."""


class UnsafeFileError(InputError):
    """A pickle-based weights file (.ckpt, .pt, .bin) that would run code when loaded."""


class ModelFormatError(InputError):
    """A weights file that is not valid safetensors, or not a kind this app can use."""


class ArchitectureMismatchError(InputError):
    """A LoRA, UNet or VAE made for the other base architecture."""


class OutOfMemoryError(AppError):
    """The device (or the machine) ran out of memory; the engine has freed what it held."""

    def __init__(self, message: str = "Out of memory. Try a smaller size or batch, or enable memory options in "
                                      "Settings.") -> None:
        super().__init__(message)


class CancelledError(AppError):
    """The user cancelled the work; nothing was written."""

    def __init__(self, message: str = "nothing was written") -> None:
        super().__init__(message)


class NotSavedError(AppError):
    """An image was made but could not be written (a full disk, a folder that cannot be written to); `png` holds
    the file it would have been, so the window can keep it on screen and save it elsewhere."""

    def __init__(self, message: str, png: bytes = b"", reason: str = "") -> None:
        super().__init__(message)
        self.png = png
        self.reason = reason  # why, and what to do: the message's end
