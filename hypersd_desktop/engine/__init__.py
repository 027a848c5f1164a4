"""The generation engine.

Importing this package loads only the torch-free parts (request and result types, recipes,
header inspection, planning, the backend registry). Engines come from `engine.backend`; the
torch engine itself is `hypersd_desktop.engine.torch_engine`, imported when it is opened.
"""

from hypersd_desktop.engine.types import (
    ControlSpec, GenerationRequest, GenerationResult, IPAdapterSpec, LoraSpec, Progress, ResolvedSettings,
)

__all__ = ["ControlSpec", "GenerationRequest", "GenerationResult", "IPAdapterSpec", "LoraSpec", "Progress",
           "ResolvedSettings"]
