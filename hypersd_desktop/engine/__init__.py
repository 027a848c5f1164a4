"""The generation engine.

Importing this package loads only the torch-free parts (request and result types, recipes,
header inspection, planning). The torch backend is `hypersd_desktop.engine.torch_engine`.
"""

from hypersd_desktop.engine.types import GenerationRequest, GenerationResult, LoraSpec, Progress, ResolvedSettings

__all__ = ["GenerationRequest", "GenerationResult", "LoraSpec", "Progress", "ResolvedSettings"]
