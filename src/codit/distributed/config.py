"""The settings of a run on Ray: one frozen dataclass, shared by ``codit generate`` and
``codit eval ifeval`` (its fields become ``--ray``, ``--ray-address``, ``--num-workers``, ...).

This module does not import Ray, so every command's ``--help`` stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass

from codit.settings import check, setting


@dataclass(frozen=True)
class RayConfig:
    """Where and on how many workers to generate. Without ``--ray`` generation runs in-process."""

    ray: bool = setting(
        False, "generate on Ray: a pool of workers, each holding its own copy of the model(s)"
    )
    ray_address: str | None = setting(
        None, "Ray cluster to join (auto, or HEAD_IP:6379); default: start a local Ray instance"
    )
    num_workers: int = setting(
        1, "Ray workers; each loads the instruct model and, in codit mode, its base", ge=1
    )
    gpus_per_worker: float = setting(
        0.0,
        "GPUs per Ray worker; 0 runs on CPU, 1 puts a pair on one GPU, 2 allows --base-device "
        "cuda:1",
        ge=0,
    )
    cpus_per_worker: float = setting(
        1.0, "CPU cores per Ray worker (its torch threads when it runs on CPU)", gt=0
    )

    def __post_init__(self) -> None:
        changed = {
            "--ray-address": self.ray_address is not None,
            "--num-workers": self.num_workers != 1,
            "--gpus-per-worker": self.gpus_per_worker != 0,
            "--cpus-per-worker": self.cpus_per_worker != 1,
        }
        given = [name for name, is_set in changed.items() if is_set]
        check(
            self,
            [f"{', '.join(given)}: only for a run on Ray; add --ray"]
            if given and not self.ray
            else [],
        )
