"""CoDIT's experiment in miniature: does a student learn more from CoDIT data than from direct data?

Ichinose et al., "Synthesizing Instruction-Tuning Datasets with Contrastive Decoding", arXiv
2604.13538 (COLM 2026), answer the same prompts twice with a teacher (an instruct model), once
sampling it directly and once contrasting it with its own base model (CoDIT), train the same
student of another architecture on each dataset, and compare the two students. ``run`` replays
that on the built-in tiny pair, with the toy world's verifiable instructions as the benchmark:

1. prompts: fresh toy instructions from the teacher's training distribution (entities and
   question kinds that never appear in the held-out set);
2. teacher data: ``codit.generate`` answers them in direct and in CoDIT mode (alpha, beta,
   temperature as the CoDIT authors'), one dataset per mode and seed, resumable;
3. student base (``student``): a GPT-NeoX model (the teacher pair is Llama) with its own tokenizer,
   pre-trained on toy-world text with the tiny pair's loop; cached in the run directory;
4. students: a copy of that base fine-tuned on each dataset with ``codit train sft`` (TRL);
5. evaluation: greedy answers to the held-out prompts, scored by IFEval's checks
   (``codit.evaluation.ifeval``);
6. report: per-seed scores, means with 95% Student-t intervals over seeds, the paired
   difference CoDIT - direct, ``results.json``, ``results.md`` and ``results.png``.

Every stage leaves its files in the run directory and is skipped on a rerun, so a killed run
resumes where it stopped and more seeds can be added later. The run is tied to its settings:
rerunning into the same directory with other settings is refused. The stages are in
``codit_stages.py``, the aggregation into ``results.json`` in ``codit_results.py``; this module
holds the settings and ``run``, which reads top to bottom. It logs; the CLI
(``codit experiment codit``) prints.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from codit.experiments.codit_results import METRICS, build_results, data_quality
from codit.experiments.codit_stages import (
    evaluate_model,
    fine_tune,
    heldout_file,
    measure_token_shift,
    teacher_data,
    write_prompts,
)
from codit.experiments.grid import (
    cell_name,
    cell_tag,
    cells,
    numbers,
    student_cells,
)
from codit.experiments.rundir import (
    close_run,
    open_run,
    stop_checking,
    tiny_build_facts,
    torch_threads,
    write_results,
)
from codit.models.loading import device_problems
from codit.settings import check, setting

__all__ = ["ARMS", "METRICS", "QUICK", "CoditExperimentConfig", "quick_config", "run"]

log = logging.getLogger(__name__)

ARMS = ("direct", "codit")
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class CoditExperimentConfig:
    """Every knob of ``codit experiment codit``. Fields become flags."""

    output: str = setting("runs/codit-mini", "run directory; a rerun resumes it")
    instruct: str = setting("tiny-instruct", "teacher: instruct model (built-in name or directory)")
    base: str = setting("tiny-base", "the teacher's own base model, for CoDIT")
    heldout: str | None = setting(
        None, "held-out prompts in IFEval jsonl (default: the pair's heldout.jsonl)"
    )
    prompts: int = setting(600, "training prompts answered by the teacher", ge=1)
    seeds: int = setting(
        3, "repetitions (teacher sampling and student fine-tuning), seeds 0..N-1", ge=1
    )
    resample_teacher: bool = setting(
        True, "each seed samples its own teacher data (else seed 0's data serves all)"
    )
    alpha: tuple[float, ...] = setting(
        (0.01,),
        "CoDIT plausibility threshold(s); a comma list (0.1,0.01) makes a grid with --beta",
        ge=0.0,
        le=1.0,
    )
    beta: tuple[float, ...] = setting(
        (1.0,), "CoDIT contrast strength(s); a comma list makes a grid", ge=0.0
    )
    students: tuple[str, ...] = setting(
        (),
        "grid cells whose students are trained, as ALPHA:BETA, comma-separated (default: every "
        "cell); the teacher data of every cell is always made and scored",
    )
    temperature: float = setting(
        1.0, "teacher sampling temperature, both modes (the paper samples)", gt=0.0
    )
    top_p: float = setting(1.0, "teacher nucleus mass", gt=0.0, le=1.0)
    max_new_tokens: int = setting(192, "longest teacher or student answer in tokens", ge=1)
    batch_size: int = setting(64, "rows decoded at once", ge=1)
    device: str = setting("auto", "auto, cpu or cuda for decoding and fine-tuning")
    threads: int = setting(
        1,
        "torch CPU threads; 1 is fastest for these tiny models on a busy machine, 0 = torch's "
        "default",
        ge=0,
    )
    student_hidden: int = setting(96, "student width, a multiple of --student-heads", ge=1)
    student_layers: int = setting(3, "student decoder layers", ge=1)
    student_heads: int = setting(4, "student attention heads", ge=1)
    student_vocab: int = setting(
        1024, "student BPE vocabulary, its own tokenizer (bytes and special tokens: 300)", ge=300
    )
    student_pages: int = setting(4000, "student pre-training pages", ge=1)
    student_steps: int = setting(200, "student pre-training steps", ge=1)
    student_batch: int = setting(16, "student pre-training pages per step", ge=1)
    student_lr: float = setting(2e-3, "student pre-training peak learning rate", gt=0, lt=1)
    sft_epochs: float = setting(3.0, "fine-tuning passes over each dataset", gt=0)
    sft_lr: float = setting(1e-3, "fine-tuning peak learning rate", gt=0, lt=1)
    sft_batch: int = setting(16, "fine-tuning conversations per step", ge=1)
    eval_limit: int | None = setting(
        None, "score only the first N held-out prompts", ge=1, optional=True
    )

    def __post_init__(self) -> None:
        problems = []
        if self.student_hidden % max(self.student_heads, 1):
            problems.append(
                f"--student-hidden ({self.student_hidden}) must be a multiple of "
                f"--student-heads ({self.student_heads})"
            )
        alphas, bad_alpha = numbers(self.alpha, "alpha")
        betas, bad_beta = numbers(self.beta, "beta")
        object.__setattr__(self, "alpha", alphas)
        object.__setattr__(self, "beta", betas)
        problems += bad_alpha + bad_beta
        cells, bad_cells = student_cells(self.students, alphas, betas)
        object.__setattr__(self, "students", tuple(cell_name(a, b) for a, b in cells))
        problems += bad_cells
        check(self, problems + device_problems(self.device, None))

    @property
    def grid(self) -> list[tuple[float, float]]:
        """Every (alpha, beta) cell, alpha-major."""
        return cells(self.alpha, self.beta)

    @property
    def student_grid(self) -> list[tuple[float, float]]:
        """The cells whose students are trained."""
        return student_cells(self.students, self.alpha, self.beta)[0]


# ``--quick``: a smoke run of every stage in about a minute; its students learn next to nothing.
QUICK: dict[str, Any] = {
    "output": "runs/codit-mini-quick",
    "prompts": 64,
    "seeds": 2,
    "max_new_tokens": 96,
    "student_hidden": 64,
    "student_layers": 2,
    "student_heads": 2,
    "student_vocab": 768,
    "student_pages": 1000,
    "student_steps": 40,
    "sft_epochs": 2.0,
    "eval_limit": 40,
}


def run(
    config: CoditExperimentConfig, on_progress: Progress | None = None, bars: bool = False
) -> dict[str, Any]:
    """Run (or resume) the experiment and write ``results.json``, ``results.md``, ``results.png``.

    Args:
        config: the settings.
        on_progress: called with (stage, done, total) as stages and their items advance.
        bars: let the training loops show their own progress bars.

    Returns:
        The content of ``results.json``.
    """
    from codit.config import to_dict
    from codit.evaluation.ifeval import load_prompts
    from codit.experiments.student import pretrain_student
    from codit.models.loading import resolve_model_path

    report = stop_checking(on_progress or (lambda stage, done, total: None))
    started, cpu_started = time.time(), time.process_time()
    seconds: dict[str, float] = {}
    out = Path(config.output)

    with torch_threads(config.threads), contextlib.ExitStack() as stack:
        # 0. Everything that can fail without a model: the pair, the held-out prompts, the settings.
        instruct, base = resolve_model_path(config.instruct), resolve_model_path(config.base)
        heldout_path = heldout_file(config)
        heldout = load_prompts(heldout_path)[: config.eval_limit]
        settings = {
            k: v
            for k, v in to_dict(config).items()
            # a grid grows by cells: alpha, beta and the student cells may change between runs
            if k not in ("output", "seeds", "batch_size", "threads", "alpha", "beta", "students")
        }
        run = stack.enter_context(open_run(out, settings, config, config.seeds))
        manifest = run.manifest
        seeds = list(range(config.seeds))
        data_seeds = seeds if config.resample_teacher else [0]

        # 1. Training prompts: the teacher's training distribution, none of its training prompts.
        clock = time.time()
        report("prompts", 0, 1)
        build = tiny_build_facts(config.instruct)
        prompts_path = out / "prompts.jsonl"
        if not prompts_path.is_file():
            write_prompts(prompts_path, build, config.prompts, {p.prompt for p in heldout})
        train_prompts = load_prompts(prompts_path)
        report("prompts", 1, 1)
        seconds["prompts"] = time.time() - clock

        # 2. Teacher data: the same prompts answered directly and in every CoDIT cell.
        clock = time.time()
        arms = {"direct": None, **{cell_tag(a, b): (a, b) for a, b in config.grid}}
        data: dict[tuple[str, int], Path] = {}
        for seed in data_seeds:
            for arm, cell in arms.items():
                data[arm, seed] = teacher_data(
                    config, instruct, base, prompts_path, arm, cell, seed, out / "teacher", report
                )
        seconds["teacher_data"] = time.time() - clock

        # 3. The student's base: another architecture, pre-trained once and cached.
        clock = time.time()
        report("student pre-training", 0, 1)
        student_base = out / "student-base"
        student_facts = pretrain_student(
            student_base,
            world_seed=build["seed"],
            hidden=config.student_hidden,
            layers=config.student_layers,
            heads=config.student_heads,
            vocab=config.student_vocab,
            pages=config.student_pages,
            steps=config.student_steps,
            batch=config.student_batch,
            lr=config.student_lr,
            progress=bars,
        )
        report("student pre-training", 1, 1)
        seconds["student_pretraining"] = time.time() - clock

        # 4-5. For each seed and trained arm: fine-tune a copy of the student, answer the held-out
        # prompts.
        sft_seconds = eval_seconds = 0.0
        scores: dict[tuple[str, int], dict[str, Any]] = {}
        trained = ["direct", *(cell_tag(a, b) for a, b in config.student_grid)]
        for seed in seeds:
            for arm in trained:
                where = out / "students" / f"{arm}-seed{seed}"
                clock = time.time()
                report(f"fine-tune {arm} seed {seed}", 0, 1)
                fine_tune(
                    config,
                    student_base,
                    data[arm, seed if config.resample_teacher else 0],
                    where / "model",
                    seed,
                    bars,
                )
                report(f"fine-tune {arm} seed {seed}", 1, 1)
                sft_seconds += time.time() - clock
                clock = time.time()
                scores[arm, seed] = evaluate_model(
                    config,
                    str(where / "model"),
                    heldout,
                    where,
                    f"evaluate {arm} seed {seed}",
                    report,
                )
                eval_seconds += time.time() - clock
        seconds["fine_tuning"], seconds["evaluation"] = sft_seconds, eval_seconds

        # Reference: the teacher itself, greedy, on the same held-out prompts.
        clock = time.time()
        teacher = evaluate_model(
            config, instruct, heldout, out / "teacher-eval", "evaluate the teacher", report
        )
        seconds["teacher_evaluation"] = time.time() - clock

        # What the contrast changes in the default cell: probability moved per token.
        clock = time.time()
        report("token shift", 0, 1)
        shift = measure_token_shift(config, instruct, base, data, data_seeds, out)
        report("token shift", 1, 1)
        seconds["token_shift"] = time.time() - clock

        # 6. Aggregate and write the report.
        seconds["total"] = time.time() - started
        seconds["cpu"] = (
            time.process_time() - cpu_started
        )  # all threads; > total when cores are free
        close_run(run, seconds)
        results = build_results(
            config,
            scores,
            teacher,
            data_quality(train_prompts, data),
            seeds,
            build,
            student_facts,
            heldout_path,
            len(heldout),
            manifest["runs"],
        )
        results["token_shift"] = shift
        from codit.experiments.report import plot, table

        write_results(out, results, table, plot)
    return results


def quick_config(**overrides: Any) -> CoditExperimentConfig:
    """The ``--quick`` preset, with ``overrides`` on top."""
    return replace(CoditExperimentConfig(**QUICK), **overrides)
