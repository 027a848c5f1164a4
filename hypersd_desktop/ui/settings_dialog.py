"""Settings: device, precision, memory options, folders, theme."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
    QLineEdit, QPushButton, QWidget,
)

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.files import typed_path, why_not_written
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.settings import Settings
from hypersd_desktop.core.vocab import Device, DType
from hypersd_desktop.engine.types import AUTO_BACKEND, BACKEND_TITLES

AUTO_TITLE = "Automatic: a GPU first, else the faster CPU backend"


# What each setting's value is called in the dialog; the settings file keeps the values.
DEVICE_TITLES = {
    Device.AUTO: "Automatic: the best one found", Device.CUDA: "NVIDIA GPU (CUDA)", Device.MPS: "Apple GPU (MPS)",
    Device.DIRECTML: "AMD or Intel GPU on Windows (DirectML)", Device.CPU: "CPU",
}
DTYPE_TITLES = {
    DType.AUTO: "Automatic: fp16 on GPUs, fp32 on the CPU", DType.FP16: "fp16 (half)",
    DType.BF16: "bf16 (newer NVIDIA GPUs, CPUs with bf16)", DType.FP32: "fp32 (full; slowest, most memory)",
}
THEME_TITLES = {"system": "As the system", "light": "Light", "dark": "Dark"}


def _choices(titles: dict, current: str) -> QComboBox:
    """A list of `titles` holding their values, `current` chosen (added as it is when the list lacks it: a
    value written by another version of the app)."""
    box = QComboBox()
    for value, title in titles.items():
        box.addItem(title, str(value))
    if box.findData(current) < 0:
        box.addItem(current, current)
    box.setCurrentIndex(box.findData(current))
    return box


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None, backends: tuple[str, ...] = ("torch",)) -> None:
        """`backends` are the names the running worker offers (from its handshake)."""
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.backend = QComboBox()
        for name in dict.fromkeys((AUTO_BACKEND, *backends, settings.backend)):
            self.backend.addItem(AUTO_TITLE if name == AUTO_BACKEND else BACKEND_TITLES.get(name, name), name)
        self.backend.setCurrentIndex(self.backend.findData(settings.backend))
        self.backend.setToolTip("PyTorch runs on CUDA, Apple MPS and the CPU; ONNX Runtime on DirectML (Windows GPUs "
                                "without CUDA), the CPU and CUDA. ONNX Runtime exports each model and LoRA set "
                                "once on first use (minutes, a few GB of disk; see the Models tab).")
        self.device = _choices(DEVICE_TITLES, settings.device)
        self.dtype = _choices(DTYPE_TITLES, settings.dtype)
        self.slicing = QCheckBox("Attention slicing (less memory, a little slower)", checked=settings.attention_slicing)
        self.tiling = QCheckBox("Always decode in tiles (VAE tiling)", checked=settings.vae_tiling)
        self.tiling.setToolTip("The VAE decodes in 512-pixel tiles on its own when the device is short of memory "
                               "for a whole image (SDXL at 1024² on an 8 GB card, say). This makes it tile always, "
                               "which is slower.")
        self.offload = QCheckBox("Offload models to the CPU between steps (CUDA; slow, least memory)",
                                 checked=settings.cpu_offload)
        self.previews = QCheckBox("Show step previews", checked=settings.previews)
        self.fast_decode = QCheckBox("Fast decode with TAESD (much faster on the CPU; slightly softer fine detail)",
                                     checked=settings.fast_decode)
        self.fast_decode.setToolTip("Decodes the final image with the tiny TAESD/TAESDXL autoencoder instead of the "
                                    "full VAE: on a CPU the full VAE takes longer than a 1-step generation itself. "
                                    "Install TAESD (SD1.5) or TAESDXL (SDXL) in the Models tab, or import the "
                                    "taesd_decoder / taesdxl_decoder files other tools keep (ComfyUI's vae_approx).")
        self.cuda_graphs = QCheckBox("GPU fast path: replay each step as a CUDA graph (NVIDIA)",
                                     checked=settings.cuda_graphs)
        self.cuda_graphs.setToolTip("Records the UNet and the VAE decode once per model, size and batch, then "
                                    "replays them with one launch: at 1-4 steps most of a step's time is otherwise "
                                    "spent launching kernels. The first image at a new size takes a moment longer. "
                                    "Memory-saving options (slicing, tiling, offload) run without it.")
        self.compile_steps = QCheckBox("Optimise for this GPU in the background (NVIDIA; compiles each model "
                                       "size once, kept for next time)", checked=settings.compile_steps)
        self.compile_steps.setToolTip("Compiles the UNet and the VAE decode for this GPU with PyTorch's inductor "
                                      "while images keep coming from the plain path; the status bar says when it "
                                      "starts and how much faster each step got. It takes minutes per model size "
                                      "and batch the first time, and about a second after a restart. Needs Triton "
                                      "and a C++ compiler (Linux).")
        self.tag_threshold, self.character_threshold = (
            QDoubleSpinBox(minimum=0.05, maximum=1.0, singleStep=0.05, decimals=2, value=value, prefix=prefix)
            for value, prefix in ((settings.tag_threshold, "tags over "),
                                  (settings.character_threshold, "characters over ")))
        self.tag_threshold.setToolTip("The score a tag needs to join the prompt Describe writes: lower gives more "
                                      "tags, and more wrong ones (0.35, as the taggers' own demo)")
        self.character_threshold.setToolTip("The score a character's name needs: a wrong name changes the image "
                                            "most, so it is asked for more surely (0.85)")
        self.describe_exclude = QLineEdit(settings.describe_exclude, placeholderText="Leave out: no tag")
        self.describe_exclude.setToolTip("Tags Describe leaves out of the prompt, commas between (\"simple "
                                         "background, white background\"), as A1111's Tagger's exclude tags")
        self.describe_imports = QCheckBox("Describe pictures imported without a prompt, for the gallery's search",
                                          checked=settings.describe_imports)
        self.describe_imports.setToolTip("Once an import ends, the tagger of the Models tab reads each picture "
                                         "that came without a prompt (a photo, an edit), as the gallery's *Describe "
                                         "for search* does, so that the search finds it by what it shows. Nothing "
                                         "happens without a tagger installed.")
        describe_row = QWidget()
        describe_layout = QHBoxLayout(describe_row)
        describe_layout.setContentsMargins(0, 0, 0, 0)
        describe_layout.addWidget(self.tag_threshold)
        describe_layout.addWidget(self.character_threshold)
        describe_layout.addWidget(self.describe_exclude, 1)
        self.theme = _choices(THEME_TITLES, settings.theme)
        data = AppPaths.default().data  # where the folders are unless one is chosen
        self.models_dir = self._folder_row(settings.models_dir, data / "models")
        self.images_dir = self._folder_row(settings.images_dir, data / "images")
        self.civitai_token = QLineEdit(settings.civitai_token, placeholderText="for downloads from Civitai",
                                       echoMode=QLineEdit.EchoMode.PasswordEchoOnEdit)
        self.civitai_token.setToolTip("Civitai asks for your API key to download any model file. Create one on "
                                      "civitai.com: Account settings → API Keys → Add API key, then paste it here. "
                                      "It is kept in the settings file and sent to Civitai only.")
        self.worker_python = QLineEdit(settings.worker_python, placeholderText="the compute runtime (File → Compute runtime…), or this app's own Python")
        self.worker_python.setToolTip("The Python interpreter that runs image generation (a compute runtime with "
                                      "torch installed); the worker restarts when this changes.")
        choose_python = QPushButton("Choose…")
        choose_python.clicked.connect(self._choose_python)
        python_row = QWidget()
        python_layout = QHBoxLayout(python_row)
        python_layout.setContentsMargins(0, 0, 0, 0)
        python_layout.addWidget(self.worker_python, 1)
        python_layout.addWidget(choose_python)
        form = QFormLayout(self)
        form.addRow("Backend", self.backend)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.dtype)
        form.addRow(self.slicing)
        form.addRow(self.tiling)
        form.addRow(self.offload)
        form.addRow(self.previews)
        form.addRow(self.fast_decode)
        form.addRow(self.cuda_graphs)
        form.addRow(self.compile_steps)
        form.addRow("Describe", describe_row)
        form.addRow(self.describe_imports)
        form.addRow("Theme", self.theme)
        form.addRow("Models folder", self.models_dir)
        form.addRow("Images folder", self.images_dir)
        form.addRow("Worker Python", python_row)
        form.addRow("Civitai API key", self.civitai_token)
        self.problem = QLabel(wordWrap=True, visible=False)  # why OK did not close the dialog
        form.addRow(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._original = settings

    def accept(self) -> None:
        """Close only with folders and a Python that can be used, said beside OK otherwise."""
        try:
            self._folder(self.models_dir.edit, "models")
            self._folder(self.images_dir.edit, "images")
            self._python()
        except InputError as error:
            self.problem.setText(f"⚠ {error}")
            self.problem.setVisible(True)
            return
        super().accept()

    @staticmethod
    def _folder(edit: QLineEdit, what: str) -> None:
        """The folder typed in `edit` made where missing, and written back as the settings keep it."""
        path = typed_path(edit.text())
        if path is None:
            return
        if path.exists() and not path.is_dir():
            raise InputError(f"The {what} folder {path} is a file, not a folder.")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"The {what} folder cannot be made: {why_not_written(error, path)}.") from None
        edit.setText(str(path))

    def _python(self) -> None:
        command = self.worker_python.text().strip().strip("\"'")
        if command and not any(sep in command for sep in "/\\") and shutil.which(command):
            return  # a command the system finds (python3, py), as a terminal would run it
        path = typed_path(self.worker_python.text())
        if path is None:
            return
        if not path.is_file():
            raise InputError(f"The worker Python {path} is not there: choose the python (python.exe) of a runtime "
                             "with torch, or leave it empty.")
        self.worker_python.setText(str(path))

    @staticmethod
    def _typed(text: str) -> str:
        """A path box's text as the settings keep it: the path it names, or the text itself where it names none."""
        try:
            path = typed_path(text)
        except InputError:
            return text.strip()
        return str(path) if path is not None else ""

    def _choose_python(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "The Python that runs generation", self.worker_python.text())
        if path:
            self.worker_python.setText(path)

    def _folder_row(self, value: str, default: Path) -> QWidget:
        row = QWidget()
        edit = QLineEdit(value, placeholderText=f"{default} (the default)")
        edit.setToolTip(f"Empty: {default}")
        browse = QPushButton("Choose…")
        browse.clicked.connect(lambda: edit.setText(QFileDialog.getExistingDirectory(self, "Choose a folder") or edit.text()))
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        layout.addWidget(browse)
        row.edit = edit  # type: ignore[attr-defined]
        return row

    def settings(self) -> Settings:
        return self._original.replace(
            backend=self.backend.currentData(), device=self.device.currentData(), dtype=self.dtype.currentData(),
            worker_python=self._typed(self.worker_python.text()),
            attention_slicing=self.slicing.isChecked(), vae_tiling=self.tiling.isChecked(),
            cpu_offload=self.offload.isChecked(), previews=self.previews.isChecked(), theme=self.theme.currentData(),
            fast_decode=self.fast_decode.isChecked(), cuda_graphs=self.cuda_graphs.isChecked(),
            compile_steps=self.compile_steps.isChecked(), tag_threshold=round(self.tag_threshold.value(), 2),
            character_threshold=round(self.character_threshold.value(), 2),
            describe_exclude=self.describe_exclude.text().strip(), describe_imports=self.describe_imports.isChecked(),
            models_dir=self._typed(self.models_dir.edit.text()), images_dir=self._typed(self.images_dir.edit.text()),
            civitai_token=self.civitai_token.text().strip(),
        )
