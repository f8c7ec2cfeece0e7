"""ECD: evolution chains of instructions turned into preference pairs with hard negatives.

Paper: Katz-Samuels, Li, Yun, Nigam, Xu, Petricek, Yin, Chilimbi, "Evolutionary Contrastive
Distillation for Language Model Alignment", Findings of EMNLP 2024, arXiv:2410.07513. This is a
reconstruction from the paper's abstract: its prompts and numbers were not available. The
default operations are the families of evolution the abstract names (content, style, format,
reasoning, breadth), in codit's words; Evol-Instruct's operations (Xu et al. 2023, "WizardLM",
arXiv:2304.12244) and codit's verifiable-constraint operation are options. The number of
rounds (4) is Evol-Instruct's. docs/methods/ecd.md says which part is whose.

``run_ecd`` reads top to bottom. For each seed instruction I_0 the responder writes R_0; then for
``rounds`` rounds, the evolver rewrites I_{j-1} into I_j with one operation and the responder
answers R_j. The operation is drawn from ``operations``: an in-depth rewrite (one new
requirement of one family), an in-breadth one (a new instruction in the same domain), or
codit's ``verifiable`` one (an IFEval type whose arguments code chooses so that R_{j-1} breaks
it, ``constraints.py``; ``verifiable_share`` fixes its share of the rounds). Each stage is
checked before it yields the pair (prompt I_j, chosen R_j, rejected R_{j-1}):

* chosen must meet every verifiable constraint of I_j (code, IFEval's checks) and, with
  ``judge_chosen``, the whole instruction (the LLM judge);
* rejected must miss the new requirement: by code for a verifiable one, by the judge otherwise;
* an in-breadth stage yields no pair (R_{j-1} answers another instruction, not a hard negative).

A chosen answer that fails ends its chain (it can be neither a chosen nor the next rejected); a
pair whose rejected answer meets the new requirement is dropped and the chain goes on. Every
stage whose response passed its checks is also an SFT record. The steps live in ``ecd_steps.py``.
Not here: DPO training itself.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from codit.backends.base import GenerationParams, TextBackend
from codit.backends.cost import Metered
from codit.io.jsonl import read_records
from codit.io.prompts import PromptRecord
from codit.io.records import RecordWriter
from codit.pipelines.ecd_checks import check_chosen, check_rejected
from codit.pipelines.ecd_config import EcdConfig
from codit.pipelines.ecd_parse import VERDICT_SCHEMA
from codit.pipelines.ecd_steps import (
    Chain,
    Stage,
    choose_operation,
    evolve,
    respond,
)
from codit.pipelines.outputs import (
    Progress,
    instruction_of,
    model_name,
    side,
)
from codit.pipelines.prompted import PromptedRun, prompted_run

log = logging.getLogger(__name__)


def run_ecd(
    config: EcdConfig,
    *,
    backends: dict[str, TextBackend] | None = None,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """Run ECD into ``config.output``, resuming whatever an earlier run left unfinished.

    Args:
        config: the run's settings.
        backends: role ("evolver", "responder", "judge") -> a ready backend instead of the specs.
        on_progress: called with (stage, done, total) as chains finish, for a progress bar.

    Returns:
        The report, also written to ``OUTPUT.report.json``.

    Raises:
        BackendError: a backend failed for good; every finished call and record is kept.
    """
    models = {
        "evolver": model_name(str(config.evolver)),
        "responder": model_name(str(config.responder)),
        "judge": model_name(config.judge_spec),
    }
    names = ("sft", "dropped", "chains")
    todo: list[PromptRecord] = []

    def work(opened: PromptedRun) -> None:
        writers = {name: opened.run.writer(side(opened.output, name)) for name in names}
        writers["errors"] = opened.run.errors
        writers["pairs"] = opened.run.records
        todo.extend(s for s in opened.seeds.records if s.id not in writers["chains"].ids)
        for start in range(0, len(todo), config.chunk_size):
            chains = [
                Chain(s.id, [Stage(0, instruction_of(s), "", "seed", [])])
                for s in todo[start : start + config.chunk_size]
            ]
            evolve_chains(chains, opened.roles, config, writers, models)
            for chain in chains:
                writers["chains"].write(_chain_record(chain))
            opened.progress("chains", min(start + config.chunk_size, len(todo)), len(todo))

    def report(opened: PromptedRun, complete: bool, seconds: float) -> dict[str, Any]:
        seeds = len(opened.seeds.records)
        return build_report(
            opened.output, config, opened.roles, complete, seeds, seeds - len(todo), seconds
        )

    return prompted_run(
        "ecd",
        config,
        models=models,
        specs={
            "evolver": str(config.evolver),
            "responder": str(config.responder),
            "judge": config.judge_spec,
        },
        sides=names,
        work=work,
        report=report,
        count=("pairs", "pairs"),
        backends=backends,
        on_progress=on_progress,
    )


def evolve_chains(
    chains: list[Chain],
    roles: dict[str, Metered],
    config: EcdConfig,
    writers: dict[str, RecordWriter],
    models: dict[str, str],
) -> None:
    """Every round of a chunk of chains, in lockstep so that each step is one batch of calls."""
    gen = GenerationParams(
        max_new_tokens=config.max_new_tokens, temperature=config.temperature, seed=config.seed
    )
    judge = dataclasses.replace(
        gen, temperature=config.judge_temperature, json_schema=VERDICT_SCHEMA
    )

    def stop(
        chain: Chain,
        round_: int,
        stage: str,
        error: str | None,
        replies: tuple[str, ...] | list[str],
    ) -> None:
        chain.stopped = f"{stage} failed in round {round_}"
        chain.outcomes.append({"round": round_, **chain.pending, "outcome": f"error_{stage}"})
        writers["errors"].write(
            {
                "id": f"{chain.id}:{round_}",
                "chain": chain.id,
                "round": round_,
                "stage": stage,
                "error": error,
                "replies": list(replies),
                **chain.pending,
            }
        )

    # Round 0: the seeds' responses (and, with judge_chosen, their check).
    respond(chains, 0, roles["responder"], gen, config, stop)
    answered = [c for c in chains if c.stopped is None]
    check_chosen(answered, 0, roles["judge"], judge, config, stop, writers, models)

    for round_ in range(1, config.rounds + 1):
        active = [c for c in chains if c.stopped is None]
        if not active:
            break
        for chain in active:
            chain.pending, chain.new = choose_operation(chain, round_, config)
        evolve(active, round_, roles["evolver"], gen, config, stop)
        active = [c for c in active if c.stopped is None]
        respond(active, round_, roles["responder"], gen, config, stop)
        active = [c for c in active if c.stopped is None]
        check_chosen(active, round_, roles["judge"], judge, config, stop, writers, models)
        active = [c for c in active if c.stopped is None]
        check_rejected(active, round_, roles["judge"], judge, config, writers, models)


def _chain_record(chain: Chain) -> dict[str, Any]:
    return {
        "id": chain.id,
        "stopped": chain.stopped,
        "rounds": chain.outcomes,
        "stages": [
            {
                "round": s.round,
                "operation": s.operation,
                "instruction": s.instruction,
                "added": s.added,
                "checks": s.checks,
            }
            for s in chain.stages
        ],
    }


def build_report(
    output: Path,
    config: EcdConfig,
    roles: dict[str, Metered],
    complete: bool,
    seeds: int,
    already_done: int,
    seconds: float,
) -> dict[str, Any]:
    """The report of the dataset on disk: rounds, operations, constraints, outcomes and cost.

    Counts are read back from the output and its side files, so the report of a resumed run
    covers the whole dataset; ``cost`` is this run's alone.
    """
    chains = read_records(side(output, "chains"), missing_ok=True)
    rounds: dict[str, Counter[str]] = {}
    operations: dict[str, Counter[str]] = {}
    constraints: dict[str, Counter[str]] = {}
    unparsable = 0
    for chain in chains:
        for step in chain["rounds"]:
            rounds.setdefault(str(step["round"]), Counter())[step["outcome"]] += 1
            operations.setdefault(step.get("operation", "?"), Counter())[step["outcome"]] += 1
            if "constraint" in step:
                constraints.setdefault(step["constraint"]["id"], Counter())[step["outcome"]] += 1
            unparsable += step.get("unparsable", 0)
    errors = read_records(side(output, "errors"), missing_ok=True)
    dropped = read_records(side(output, "dropped"), missing_ok=True)
    pairs = read_records(output, missing_ok=True)
    return {
        "complete": complete,
        "seconds": round(seconds, 2),
        "seeds": seeds,
        "chains": {
            "finished": len(chains),
            "this_run": len(chains) - already_done if complete else None,
            "already_done": already_done,
            "stopped_early": sum(c["stopped"] is not None for c in chains),
        },
        "records": {
            "pairs": len(pairs),
            "pairs_verifiable": sum(p["meta"]["operation"] == "verifiable" for p in pairs),
            "pairs_free_form": sum(p["meta"]["operation"] != "verifiable" for p in pairs),
            "sft": len(read_records(side(output, "sft"), missing_ok=True)),
            "dropped": len(dropped),
            "dropped_by_outcome": dict(Counter(d["outcome"] for d in dropped)),
            "errors": len(errors),
            "errors_by_stage": dict(Counter(e["stage"] for e in errors)),
        },
        "rounds": {k: dict(v) for k, v in sorted(rounds.items(), key=lambda kv: int(kv[0]))},
        "operations": {k: dict(v) for k, v in sorted(operations.items())},
        "constraints": {k: dict(v) for k, v in sorted(constraints.items())},
        "unparsable_replies": unparsable,
        "cost": {role: meter.report() for role, meter in roles.items()},
        "files": {name: str(side(output, name)) for name in ("sft", "dropped", "errors", "chains")}
        | {"pairs": str(output)},
    }
