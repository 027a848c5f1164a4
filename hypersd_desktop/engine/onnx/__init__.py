"""The ONNX Runtime backend (DirectML on Windows GPUs, the CPU, CUDA where installed).

`export` turns a base model + fused LoRA set into ONNX graphs once, into a cache of complete exports;
`providers` sets up ONNX Runtime sessions per execution provider; `noise` draws torch's CPU normals and
`schedulers` steps the Hyper-SD schedulers in numpy, so generation needs no torch; `pipeline` runs an SD1.5
export from prompt to image with them. Still to come: SDXL, and the engine behind the backend protocol.
"""
