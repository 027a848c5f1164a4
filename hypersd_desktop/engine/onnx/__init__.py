"""The ONNX Runtime backend (DirectML on Windows GPUs, the CPU, CUDA where installed).

`export` turns a base model + fused LoRA set into ONNX graphs once, into a cache of complete exports.
"""
