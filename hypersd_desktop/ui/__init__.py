"""PySide6 widgets. Never imports torch: generation runs in the worker process."""
