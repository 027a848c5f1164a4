"""The generation worker process, its message protocol and the Qt bridge."""
