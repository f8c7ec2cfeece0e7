"""The settings of a run on Ray: one frozen dataclass, shared by ``codit generate`` and
``codit eval ifeval`` (its fields become ``--ray``, ``--ray-address``, ``--num-workers``, ...).

This module does not import Ray, so every command's ``--help`` stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codit.errors import ConfigError


@dataclass(frozen=True)
class RayConfig:
    """Where and on how many workers to generate. Without ``--ray`` generation runs in-process."""

    ray: bool = field(
        default=False,
        metadata={
            "help": "generate on Ray: a pool of workers, each holding its own copy of the model(s)"
        },
    )
    ray_address: str | None = field(
        default=None,
        metadata={
            "help": "Ray cluster to join (auto, or HEAD_IP:6379); default: start a local Ray instance"
        },
    )
    num_workers: int = field(
        default=1,
        metadata={
            "help": "Ray workers; each loads the instruct model and, in codit mode, its base"
        },
    )
    gpus_per_worker: float = field(
        default=0.0,
        metadata={
            "help": "GPUs per Ray worker; 0 runs on CPU, 1 puts a pair on one GPU, 2 allows --base-device cuda:1"
        },
    )
    cpus_per_worker: float = field(
        default=1.0,
        metadata={"help": "CPU cores per Ray worker (its torch threads when it runs on CPU)"},
    )

    def __post_init__(self) -> None:
        problems = []
        if self.num_workers < 1:
            problems.append(f"--num-workers must be >= 1, got {self.num_workers}")
        if self.gpus_per_worker < 0:
            problems.append(f"--gpus-per-worker must be >= 0, got {self.gpus_per_worker}")
        if self.cpus_per_worker <= 0:
            problems.append(f"--cpus-per-worker must be > 0, got {self.cpus_per_worker}")
        changed = {
            "--ray-address": self.ray_address is not None,
            "--num-workers": self.num_workers != 1,
            "--gpus-per-worker": self.gpus_per_worker != 0,
            "--cpus-per-worker": self.cpus_per_worker != 1,
        }
        given = [name for name, is_set in changed.items() if is_set]
        if given and not self.ray:
            problems.append(f"{', '.join(given)}: only for a run on Ray; add --ray")
        if problems:
            raise ConfigError(problems)
