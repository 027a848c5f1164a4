"""The compute runtime: the Python environment with torch that the worker runs in beside the packaged app.

`locks` reads the shipped lock files, `hardware` finds what the machine can run on without torch,
`install` makes, updates, repairs and removes the runtime with uv.
"""
