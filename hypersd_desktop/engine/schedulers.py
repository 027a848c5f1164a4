"""Schedulers for the Hyper-SD recipes, derived from the base model's own scheduler config.

As in the model card: `DDIMScheduler.from_config(base, timestep_spacing="trailing")`,
`TCDScheduler.from_config(base)`, `LCMScheduler.from_config(base)`; the base model's own
scheduler for plain generation.
"""

from __future__ import annotations

from typing import Any

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.vocab import Scheduler

#: Schedulers whose `set_timesteps` accepts an explicit list of timesteps.
ACCEPTS_TIMESTEPS = (Scheduler.TCD, Scheduler.LCM)


def build_scheduler(name: str, base_scheduler: Any) -> Any:
    """A fresh scheduler of kind `name` from the base model's scheduler (`base_scheduler`)."""
    from diffusers import DDIMScheduler, LCMScheduler, TCDScheduler

    config = base_scheduler.config
    if name == Scheduler.DDIM_TRAILING:
        return DDIMScheduler.from_config(config, timestep_spacing="trailing")
    if name == Scheduler.TCD:
        return TCDScheduler.from_config(config)
    if name == Scheduler.LCM:
        return LCMScheduler.from_config(config)
    if name == Scheduler.BASE:
        return type(base_scheduler).from_config(config)
    raise InputError(f"Unknown scheduler {name!r}.")


def check_timesteps(name: str, timesteps: tuple[int, ...] | None) -> None:
    if timesteps is not None and name not in ACCEPTS_TIMESTEPS:
        raise InputError(
            f"The {name} scheduler takes no explicit timesteps; use --scheduler tcd or lcm, or leave timesteps out."
        )
