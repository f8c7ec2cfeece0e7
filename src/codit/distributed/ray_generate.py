"""Generation on a pool of Ray workers: the same engine, one model pair per worker.

The prompts still to answer (``generation.run`` has already dropped the finished ids) arrive as
a stream and leave for the workers in tasks of a few engine batches each: a fixed pool of
``PairWorker`` actors, each holding the instruct model (and, in codit mode, its base) loaded
once on its own GPUs, decodes its tasks with ``PairEngine`` exactly as a local run does. At most
``TASKS_PER_WORKER`` tasks per worker are out at once, so the driver holds only the prompts in
flight, however long the input. Finished tasks come back in the order they finish, and
``generation.run`` writes them: the driver is the only writer, so the output never depends on
which worker, or which node, made a record.

Fault tolerance is Ray's: an actor that dies is restarted (it loads its models again) and the
tasks it held are retried, without limit. A task's results leave its worker only when the whole
task is done, so a dead worker's half-done task is simply redone; the driver still skips an id
it has already written. An exception in the engine is not retried: it ends the run.

This module is imported only when a run asks for Ray; it is not a scheduler of its own.
"""

from __future__ import annotations

import logging
import math
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from itertools import islice
from typing import Any

import ray

from codit.decoding.engine import Completion
from codit.distributed.config import RayConfig
from codit.errors import BackendError, ConfigError
from codit.generation.config import GenerateConfig

log = logging.getLogger(__name__)

# Engine batches per Ray task: enough to keep continuous batching busy, few enough that a lost
# worker costs little and that the last tasks of a run end together.
BATCHES_PER_TASK = 4

# Tasks out per worker: the one it decodes and the next, queued on it so that it never waits
# for the driver. This bounds the prompts in flight to num_workers x 2 tasks.
TASKS_PER_WORKER = 2

# The last line of a Python traceback, as Ray passes a worker's exception on.
ERROR_LINE = re.compile(r"^\s*[\w.]+(Error|Exception): ")

Conversation = tuple[str, list[dict[str, str]]]


def ray_completions(
    config: GenerateConfig,
    conversations: Iterable[Conversation],
    total: int,
    record_models: Callable[[dict[str, Any]], None],
) -> Iterator[Completion]:
    """Decode the (record id, messages) pairs on Ray; completions stream back by task.

    The pair is checked from its tokenizers and configs here, before any worker starts. Without
    ``--ray-address`` a local Ray instance is started, and stopped when the stream ends.
    ``conversations`` is read lazily, a task at a time, as workers take them.

    Args:
        config: the run settings; ``config.distributed`` says where and on how many workers.
        conversations: the prompts still to answer.
        total: how many there are (sets the task size when there are few).
        record_models: called once, with the models' facts from the first worker to report.

    Raises:
        ConfigError: a local instance has fewer GPUs than the workers ask for.
        BackendError: a worker failed in a way Ray does not retry (an exception in the engine).
    """
    from codit.models.chat import require_chat_template
    from codit.models.pair import load_pair_tokenizer

    base = config.base if config.decoding.contrastive else None
    tokenizer, _ = load_pair_tokenizer(config.instruct, base, config.trust_remote_code)
    require_chat_template(tokenizer)
    settings = config.distributed
    started_here = connect(settings)
    try:
        check_gpus(settings, local=started_here and not settings.ray_address)
    except ConfigError:
        ray.shutdown()
        raise
    rows_per_task = max(
        1, min(BATCHES_PER_TASK * config.batch_size, math.ceil(total / settings.num_workers))
    )
    actor = ray.remote(max_restarts=-1, max_task_retries=-1)(PairWorker)
    workers = [
        actor.options(num_cpus=settings.cpus_per_worker, num_gpus=settings.gpus_per_worker).remote(
            config
        )
        for _ in range(settings.num_workers)
    ]
    log.info(
        "decoding %d prompts on %d Ray workers, %d per task",
        total,
        settings.num_workers,
        rows_per_task,
    )
    stream = iter(conversations)
    tasks = iter(lambda: list(islice(stream, rows_per_task)), [])
    return _stream(workers, tasks, record_models, started_here)


def connect(settings: RayConfig) -> bool:
    """Join the cluster at ``--ray-address``, or start a local Ray instance; True if this call did.

    A process already connected (a notebook, a test) keeps its cluster.
    """
    if ray.is_initialized():
        return False
    if settings.ray_address:
        check_reachable(settings.ray_address)
        try:
            ray.init(address=settings.ray_address, logging_level=logging.WARNING)
        except ConnectionError as err:
            raise BackendError(
                f"cannot join the Ray cluster at {settings.ray_address}: {err}"
            ) from None
    else:
        ray.init(
            address="local",
            num_cpus=math.ceil(settings.num_workers * settings.cpus_per_worker),
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
    return True


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail in seconds when a ``HOST:PORT`` head does not answer; Ray itself would wait forever.

    Other forms (``auto``) are left to Ray, which says at once when it finds no cluster.
    """
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise BackendError(
            f"no Ray cluster answers at {address} ({err.strerror or err}); "
            "start one with `ray start --head` or fix --ray-address"
        ) from None


def check_gpus(settings: RayConfig, local: bool) -> None:
    """Fail when a local instance cannot hold the pool; on a cluster the pool waits (autoscaling)."""
    wanted = settings.num_workers * settings.gpus_per_worker
    have = ray.cluster_resources().get("GPU", 0)
    if wanted <= have:
        return
    message = (
        f"--num-workers {settings.num_workers} --gpus-per-worker {settings.gpus_per_worker:g} "
        f"needs {wanted:g} GPUs but the Ray cluster has {have:g}"
    )
    if local:
        raise ConfigError(message)
    log.warning("%s; workers start as GPUs join", message)


def _stream(
    workers: list[Any],
    tasks: Iterator[list[Conversation]],
    record_models: Callable[[dict[str, Any]], None],
    started_here: bool,
) -> Iterator[Completion]:
    """Keep every worker ``TASKS_PER_WORKER`` tasks deep; yield each task's rows as it ends."""
    out: dict[Any, int] = {}  # task -> the worker it went to
    load = [0] * len(workers)
    reported = False
    try:
        while True:
            while len(out) < TASKS_PER_WORKER * len(workers):
                task = next(tasks, None)
                if task is None:
                    break
                worker = load.index(min(load))
                out[workers[worker].complete.remote(task)] = worker
                load[worker] += 1
            if not out:
                return
            [ready], _ = ray.wait(list(out), num_returns=1)
            load[out.pop(ready)] -= 1
            models, completions = ray.get(ready)
            if not reported:
                record_models(models)
                reported = True
            yield from completions
    except ray.exceptions.RayError as err:
        raise BackendError(
            f"a Ray worker failed ({worker_error(err)}); the records written so far "
            "are kept, rerun the same command to resume"
        ) from err
    finally:
        for worker in workers:
            ray.kill(worker)
        if started_here:
            ray.shutdown()


def worker_error(err: Exception) -> str:
    """The worker's own exception line (``ValueError: ...``) from Ray's report, else its class."""
    lines = [line.strip() for line in str(err).splitlines() if ERROR_LINE.match(line)]
    return lines[-1] if lines else type(err).__name__


class PairWorker:
    """A Ray actor holding one model pair; completes tasks of prompts with ``PairEngine``.

    Args:
        config: the run settings (models, devices, decoding, the engine's batch size).
    """

    def __init__(self, config: GenerateConfig):
        import torch
        import transformers

        from codit.generation.completions import load_run_pair, pair_engine

        transformers.logging.disable_progress_bar()  # a worker's bars would interleave in the driver's log
        if config.distributed.gpus_per_worker == 0:
            torch.set_num_threads(max(1, int(config.distributed.cpus_per_worker)))
        self.config = config
        self.pair = load_run_pair(config)
        self.engine = pair_engine(self.pair, config)
        self.models = self.pair.info()

    def complete(
        self, conversations: list[Conversation]
    ) -> tuple[dict[str, Any], list[Completion]]:
        """(the models' facts, one completion per conversation), once all of them are done."""
        from codit.generation.completions import complete

        done = complete(
            self.engine, self.pair.tokenizer, conversations, self.config.chat_template_kwargs
        )
        # The token ids stay here; a record needs only the text and the counts.
        return self.models, [replace(c, token_ids=[]) for c in done]
