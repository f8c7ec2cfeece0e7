"""Generation on a pool of Ray workers: the same engine, one model pair per worker.

The prompts still to answer (``generation.run`` has already dropped the finished ids) become a
Ray dataset. ``map_batches`` hands batches of them to a fixed pool of ``PairWorker`` actors;
each loads the instruct model (and, in codit mode, its base) once, on its own GPUs, and decodes
its batches with ``PairEngine`` exactly as a local run does. Finished batches stream back to the
driver in the order they finish, and ``generation.run`` writes them: the driver is the only
writer, so the output never depends on which worker, or which node, made a record.

Fault tolerance is Ray Data's: an actor that dies is restarted (it loads its models again) and
the batch it held is retried, without limit (Ray Data's defaults for actor pools). A batch's
results leave its worker only when the whole batch is done, so a dead worker's half-done batch
is simply redone; the driver still skips an id it has already written.

This module is imported only when a run asks for Ray; it is not a scheduler of its own.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import ray
import ray.data

from codit.decoding.engine import Completion
from codit.distributed.config import RayConfig
from codit.errors import BackendError, ConfigError
from codit.generation.config import GenerateConfig

log = logging.getLogger(__name__)

# Engine batches per Ray task: enough to keep continuous batching busy, few enough that a lost
# worker costs little and that the last tasks of a run end together.
BATCHES_PER_TASK = 4

# Test-only fault injection: "<record id>@<marker file>" makes the worker that finishes that
# record exit on the spot, as a lost node would, unless the marker file exists (it creates it
# first, so its restarted self goes on). Read on the driver and handed to the workers.
CRASH_ONCE_FOR_TESTS = "CODIT_TEST_CRASH_WORKER_ONCE"

# The last line of a Python traceback, as Ray passes a worker's exception on.
ERROR_LINE = re.compile(r"^\s*[\w.]+(Error|Exception): ")

RESULTS = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("finish_reason", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("error", pa.string()),
        ("models", pa.string()),  # the worker's ModelPair.info(), as JSON, for the manifest
    ]
)


def ray_completions(
    config: GenerateConfig,
    conversations: dict[str, list[dict[str, str]]],
    record_models: Callable[[dict[str, Any]], None],
) -> Iterator[Completion]:
    """Decode the conversations (record id -> messages) on Ray; completions stream back by batch.

    The pair is checked from its tokenizers and configs here, before any worker starts. Without
    ``--ray-address`` a local Ray instance is started, and stopped when the stream ends.

    Args:
        config: the run settings; ``config.distributed`` says where and on how many workers.
        conversations: the prompts still to answer.
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
    rows_per_task = min(
        BATCHES_PER_TASK * config.batch_size, math.ceil(len(conversations) / settings.num_workers)
    )
    pending = ray.data.from_items(
        [{"id": key, "messages": json.dumps(messages)} for key, messages in conversations.items()]
    )
    results = pending.map_batches(
        PairWorker,
        fn_constructor_kwargs={
            "config": config,
            "crash_once": os.environ.get(CRASH_ONCE_FOR_TESTS),
        },
        batch_size=rows_per_task,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=settings.num_workers),
        num_cpus=settings.cpus_per_worker,
        num_gpus=settings.gpus_per_worker,
    )
    results.context.enable_progress_bars = False  # the CLI draws its own
    results.context.print_on_execution_start = False
    log.info(
        "decoding %d prompts on %d Ray workers, %d per task",
        len(conversations),
        settings.num_workers,
        rows_per_task,
    )
    return _stream(results, record_models, started_here)


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
    results: ray.data.Dataset, record_models: Callable[[dict[str, Any]], None], started_here: bool
) -> Iterator[Completion]:
    reported = False
    try:
        for row in results.iter_rows():
            if not reported:
                record_models(json.loads(row["models"]))
                reported = True
            # The token ids stay on the worker; a record needs only the text and the counts.
            yield Completion(
                str(row["id"]),
                str(row["text"]),
                [],
                str(row["finish_reason"]),
                int(row["prompt_tokens"]),
                int(row["completion_tokens"]),
                row["error"],
            )
    except ray.exceptions.RayError as err:
        raise BackendError(
            f"a Ray worker failed ({worker_error(err)}); the records written so far "
            "are kept, rerun the same command to resume"
        ) from err
    finally:
        if started_here:
            ray.shutdown()


def worker_error(err: Exception) -> str:
    """The worker's own exception line (``ValueError: ...``) from Ray's report, else its class."""
    lines = [line.strip() for line in str(err).splitlines() if ERROR_LINE.match(line)]
    return lines[-1] if lines else type(err).__name__


class PairWorker:
    """A Ray actor holding one model pair; completes batches of prompts with ``PairEngine``.

    Args:
        config: the run settings (models, devices, decoding, the engine's batch size).
        crash_once: test-only fault injection, see ``CRASH_ONCE_FOR_TESTS``.
    """

    def __init__(self, config: GenerateConfig, crash_once: str | None = None):
        import torch
        import transformers

        from codit.generation.run import load_run_pair, pair_engine

        transformers.logging.disable_progress_bar()  # a worker's bars would interleave in the driver's log
        if config.distributed.gpus_per_worker == 0:
            torch.set_num_threads(max(1, int(config.distributed.cpus_per_worker)))
        self.config = config
        self.pair = load_run_pair(config)
        self.engine = pair_engine(self.pair, config)
        self.models = json.dumps(self.pair.info(), default=str)
        self.crash_once = crash_once

    def __call__(self, batch: pa.Table) -> pa.Table:
        from codit.generation.run import complete

        conversations = [(row["id"], json.loads(row["messages"])) for row in batch.to_pylist()]
        rows = []
        for done in complete(
            self.engine, self.pair.tokenizer, conversations, self.config.chat_template_kwargs
        ):
            if self.crash_once:
                _crash_once_for_tests(self.crash_once, done.key)
            rows.append(
                {
                    "id": done.key,
                    "text": done.text,
                    "finish_reason": done.finish_reason,
                    "prompt_tokens": done.prompt_tokens,
                    "completion_tokens": done.completion_tokens,
                    "error": done.error,
                    "models": self.models,
                }
            )
        return pa.Table.from_pylist(rows, schema=RESULTS)


def _crash_once_for_tests(spec: str, key: str) -> None:
    target, _, marker = spec.partition("@")
    if key == target and not Path(marker).exists():
        Path(marker).touch()
        os._exit(1)  # no cleanup, no exception: the way a worker dies when its node is lost
