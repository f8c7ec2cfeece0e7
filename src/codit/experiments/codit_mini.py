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
rerunning into the same directory with other settings is refused. This module logs; the CLI
(``codit experiment codit``) prints.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from codit.errors import ConfigError, DataError
from codit.experiments.grid import (
    DEFAULT_CELL,
    cell_name,
    cell_tag,
    cells,
    default_cell,
    numbers,
    student_cells,
)
from codit.experiments.rundir import (
    close_run,
    machine_problems,
    open_run,
    provenance,
    stop_checking,
    tiny_build_facts,
    torch_threads,
    write_results,
)
from codit.io.atomic import write_json, write_lines

log = logging.getLogger(__name__)

ARMS = ("direct", "codit")
METRICS = (
    "prompt_level_strict",
    "instruction_level_strict",
    "prompt_level_loose",
    "instruction_level_loose",
)
INTERVAL = "two-sided 95% Student t-interval over seeds (mean +- t(0.975, S-1) * sd / sqrt(S))"
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class CoditExperimentConfig:
    """Every knob of ``codit experiment codit``. Fields become flags."""

    output: str = field(
        default="runs/codit-mini", metadata={"help": "run directory; a rerun resumes it"}
    )
    instruct: str = field(
        default="tiny-instruct",
        metadata={"help": "teacher: instruct model (built-in name or directory)"},
    )
    base: str = field(
        default="tiny-base", metadata={"help": "the teacher's own base model, for CoDIT"}
    )
    heldout: str | None = field(
        default=None,
        metadata={"help": "held-out prompts in IFEval jsonl (default: the pair's heldout.jsonl)"},
    )
    prompts: int = field(default=600, metadata={"help": "training prompts answered by the teacher"})
    seeds: int = field(
        default=3,
        metadata={"help": "repetitions (teacher sampling and student fine-tuning), seeds 0..N-1"},
    )
    resample_teacher: bool = field(
        default=True,
        metadata={"help": "each seed samples its own teacher data (else seed 0's data serves all)"},
    )
    alpha: tuple[float, ...] = field(
        default=(0.01,),
        metadata={
            "help": "CoDIT plausibility threshold(s), in [0, 1]; a comma list (0.1,0.01) "
            "makes a grid with --beta"
        },
    )
    beta: tuple[float, ...] = field(
        default=(1.0,),
        metadata={"help": "CoDIT contrast strength(s), >= 0; a comma list makes a grid"},
    )
    students: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "grid cells whose students are trained, as ALPHA:BETA, comma-separated "
            "(default: every cell); the teacher data of every cell is always made and scored"
        },
    )
    temperature: float = field(
        default=1.0, metadata={"help": "teacher sampling temperature, > 0 (both modes)"}
    )
    top_p: float = field(default=1.0, metadata={"help": "teacher nucleus mass, in (0, 1]"})
    max_new_tokens: int = field(
        default=192, metadata={"help": "longest teacher or student answer in tokens"}
    )
    batch_size: int = field(default=64, metadata={"help": "rows decoded at once"})
    device: str = field(
        default="auto", metadata={"help": "auto, cpu or cuda for decoding and fine-tuning"}
    )
    threads: int = field(
        default=1,
        metadata={
            "help": "torch CPU threads; 1 is fastest for these tiny models on a busy machine, 0 = torch's default"
        },
    )
    student_hidden: int = field(default=96, metadata={"help": "student width"})
    student_layers: int = field(default=3, metadata={"help": "student decoder layers"})
    student_heads: int = field(default=4, metadata={"help": "student attention heads"})
    student_vocab: int = field(
        default=1024, metadata={"help": "student BPE vocabulary (its own tokenizer)"}
    )
    student_pages: int = field(default=4000, metadata={"help": "student pre-training pages"})
    student_steps: int = field(default=200, metadata={"help": "student pre-training steps"})
    student_batch: int = field(default=16, metadata={"help": "student pre-training pages per step"})
    student_lr: float = field(
        default=2e-3, metadata={"help": "student pre-training peak learning rate"}
    )
    sft_epochs: float = field(
        default=3.0, metadata={"help": "fine-tuning passes over each dataset"}
    )
    sft_lr: float = field(default=1e-3, metadata={"help": "fine-tuning peak learning rate"})
    sft_batch: int = field(default=16, metadata={"help": "fine-tuning conversations per step"})
    eval_limit: int | None = field(
        default=None, metadata={"help": "score only the first N held-out prompts"}
    )

    def __post_init__(self) -> None:
        problems = []
        for name in (
            "prompts",
            "seeds",
            "max_new_tokens",
            "batch_size",
            "student_hidden",
            "student_layers",
            "student_heads",
            "student_pages",
            "student_steps",
            "student_batch",
            "sft_batch",
        ):
            if getattr(self, name) < 1:
                problems.append(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}"
                )
        if self.student_hidden % max(self.student_heads, 1):
            problems.append(
                f"--student-hidden ({self.student_hidden}) must be a multiple of "
                f"--student-heads ({self.student_heads})"
            )
        if self.student_vocab < 300:
            problems.append(
                f"--student-vocab must be >= 300 (bytes and special tokens), got {self.student_vocab}"
            )
        alphas, bad_alpha = numbers(self.alpha, "alpha")
        betas, bad_beta = numbers(self.beta, "beta")
        object.__setattr__(self, "alpha", alphas)
        object.__setattr__(self, "beta", betas)
        problems += bad_alpha + bad_beta
        problems += [f"--alpha must be in [0, 1], got {a}" for a in alphas if not 0.0 <= a <= 1.0]
        problems += [f"--beta must be >= 0, got {b}" for b in betas if b < 0]
        cells, bad_cells = student_cells(self.students, alphas, betas)
        object.__setattr__(self, "students", tuple(cell_name(a, b) for a, b in cells))
        problems += bad_cells
        if self.temperature <= 0:
            problems.append(
                f"--temperature must be > 0 (the paper samples), got {self.temperature}"
            )
        if not 0.0 < self.top_p <= 1.0:
            problems.append(f"--top-p must be in (0, 1], got {self.top_p}")
        for name in ("student_lr", "sft_lr"):
            if not 0 < getattr(self, name) < 1:
                problems.append(
                    f"--{name.replace('_', '-')} must be in (0, 1), got {getattr(self, name)}"
                )
        if self.sft_epochs <= 0:
            problems.append(f"--sft-epochs must be > 0, got {self.sft_epochs}")
        if self.eval_limit is not None and self.eval_limit < 1:
            problems.append(f"--eval-limit must be >= 1, got {self.eval_limit}")
        problems += machine_problems(self.threads, self.device)
        if problems:
            raise ConfigError(problems)

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
        heldout_path = _heldout_path(config)
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
            _write_prompts(prompts_path, build, config.prompts, {p.prompt for p in heldout})
        train_prompts = load_prompts(prompts_path)
        report("prompts", 1, 1)
        seconds["prompts"] = time.time() - clock

        # 2. Teacher data: the same prompts answered directly and in every CoDIT cell.
        clock = time.time()
        arms = {"direct": None, **{cell_tag(a, b): (a, b) for a, b in config.grid}}
        data: dict[tuple[str, int], Path] = {}
        for seed in data_seeds:
            for arm, cell in arms.items():
                data[arm, seed] = _teacher_data(
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
                _fine_tune(
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
                scores[arm, seed] = _evaluate(
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
        teacher = _evaluate(
            config, instruct, heldout, out / "teacher-eval", "evaluate the teacher", report
        )
        seconds["teacher_evaluation"] = time.time() - clock

        # What the contrast changes in the default cell: probability moved per token.
        clock = time.time()
        report("token shift", 0, 1)
        shift = _token_shift(config, instruct, base, data, data_seeds, out)
        report("token shift", 1, 1)
        seconds["token_shift"] = time.time() - clock

        # 6. Aggregate and write the report.
        seconds["total"] = time.time() - started
        seconds["cpu"] = (
            time.process_time() - cpu_started
        )  # all threads; > total when cores are free
        close_run(run, seconds)
        results = _results(
            config,
            scores,
            teacher,
            _data_quality(train_prompts, data),
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


def _heldout_path(config: CoditExperimentConfig) -> Path:
    from codit.tiny.build import HELDOUT_PATH

    if config.heldout:
        path = Path(config.heldout)
    elif config.instruct == "tiny-instruct":
        path = HELDOUT_PATH
    else:  # ``codit tiny build --output-dir D`` writes D/heldout.jsonl beside the models
        path = Path(config.instruct).parent / "heldout.jsonl"
    if not path.is_file():
        raise DataError(f"no held-out prompts at {path}; give --heldout FILE (IFEval jsonl)")
    return path


def _write_prompts(path: Path, build: dict[str, Any], n: int, heldout: set[str]) -> None:
    """``n`` new prompts drawn after the teacher's own ``conversations`` training prompts.

    ``instruction_data`` draws training examples one after another from one seeded stream, so
    the first ``conversations`` of a longer draw are exactly the teacher's SFT prompts; the
    rest are new prompts of the same distribution, distinct from those and from the held-out set.
    """
    from codit.tiny.conversations import instruction_data
    from codit.tiny.world import make_world

    drawn, _ = instruction_data(
        make_world(build["seed"]), build["conversations"] + n, 0, build["seed"]
    )
    fresh = drawn[build["conversations"] :]
    clash = [e.prompt for e in fresh if e.prompt in heldout]
    if clash:
        raise DataError(f"{len(clash)} training prompts are also held out, e.g. {clash[0]!r}")
    rows = [  # the messages are system (sometimes) and user; the teacher answers
        {"id": str(i), "messages": e.messages()[:-1], **e.ifeval(), "key": i}
        for i, e in enumerate(fresh)
    ]
    write_lines(path, rows)


def _teacher_data(
    config: CoditExperimentConfig,
    instruct: str,
    base: str,
    prompts: Path,
    arm: str,
    cell: tuple[float, float] | None,
    seed: int,
    folder: Path,
    report: Progress,
) -> Path:
    """One teacher dataset: ``arm`` is ``direct`` (``cell`` None) or a CoDIT cell's tag."""
    from codit.decoding.config import DecodingConfig
    from codit.generation.config import GenerateConfig
    from codit.generation.run import errors_path, generate
    from codit.io.jsonl import read_ids

    output = folder / f"{arm}-seed{seed}.jsonl"
    stage = f"teacher {arm} seed {seed}"
    # a prompt the teacher failed on (e.g. longer than its context) stays in the errors file
    total, before = config.prompts, len(read_ids(output) | read_ids(errors_path(output)))
    report(stage, min(before, total), total)
    if before < total:
        alpha, beta = cell or DEFAULT_CELL  # direct sampling ignores both
        decoding = DecodingConfig(
            mode="direct" if cell is None else "codit",
            alpha=alpha,
            beta=beta,
            temperature=config.temperature,
            top_p=config.top_p,
            max_new_tokens=config.max_new_tokens,
            seed=seed,
        )
        summary = generate(
            GenerateConfig(
                input=str(prompts),
                output=str(output),
                instruct=instruct,
                base=base,
                decoding=decoding,
                batch_size=config.batch_size,
                device=config.device,
            ),
            on_progress=lambda done, _tokens: report(stage, before + done, total),
        )
        if summary.failed:
            log.warning("%s: %d prompts failed; see %s", stage, summary.failed, summary.errors_path)
    report(stage, total, total)
    return output


def _fine_tune(
    config: CoditExperimentConfig, student: Path, data: Path, output: Path, seed: int, bars: bool
) -> None:
    """``codit train sft`` of a copy of the student on one teacher dataset (skipped if done)."""
    from transformers import PrinterCallback

    from codit.training.config import TrainConfig
    from codit.training.outputs import MANIFEST, finish
    from codit.training.sft import build_sft_trainer

    if (output / MANIFEST).is_file():
        return
    train = TrainConfig(
        model=str(student),
        data=str(data),
        output=str(output),
        overwrite=True,
        epochs=config.sft_epochs,
        lr=config.sft_lr,
        lr_scheduler="cosine",
        warmup_ratio=0.05,
        batch_size=config.sft_batch,
        max_length=512,
        seed=seed,
        device=config.device if config.device in ("auto", "cpu") else "cuda",
        logging_steps=10,
    )
    trainer, facts = build_sft_trainer(train, progress=bars)
    trainer.remove_callback(PrinterCallback)  # the losses go to the manifest, not to stdout
    trainer.train()
    finish(trainer, train, "sft", facts)


def _evaluate(
    config: CoditExperimentConfig,
    model: str,
    heldout: list[Any],
    folder: Path,
    stage: str,
    report: Progress,
) -> dict[str, Any]:
    """Greedy answers to the held-out prompts and IFEval's metrics (cached in ``folder``)."""
    from codit.evaluation.ifeval import evaluate, summarize
    from codit.generation.texts import LocalGenerator

    metrics_path = folder / "metrics.json"
    if metrics_path.is_file():
        report(stage, 1, 1)
        return json.loads(metrics_path.read_text())
    report(stage, 0, 1)
    generator = LocalGenerator(model, device=config.device)
    texts = [
        g.text
        for g in generator.generate(
            [[{"role": "user", "content": p.prompt}] for p in heldout],
            "direct",
            batch_size=config.batch_size,
            max_new_tokens=config.max_new_tokens,
            temperature=0.0,
        )
    ]
    verdicts = evaluate(heldout, {str(p.key): t for p, t in zip(heldout, texts, strict=True)})
    metrics = summarize(verdicts)
    rows = [
        {"key": p.key, "prompt": p.prompt, "response": t, **v.to_dict()}
        for p, t, v in zip(heldout, texts, verdicts, strict=True)
    ]
    write_lines(folder / "heldout.jsonl", rows)
    write_json(metrics_path, metrics)
    report(stage, 1, 1)
    return metrics


def _token_shift(
    config: CoditExperimentConfig,
    instruct: str,
    base: str,
    data: dict[tuple[str, int], Path],
    data_seeds: list[int],
    out: Path,
) -> dict[str, Any]:
    """``token_shift`` over the default cell's CoDIT data of every seed (cached in ``out``)."""
    from codit.experiments.token_shift import token_shift
    from codit.io.manifest import read_json

    alpha, beta = default_cell(config.grid)
    tag = cell_tag(alpha, beta)
    path = out / "token-shift.json"
    cached = read_json(path)
    if cached and cached.get("tag") == tag and cached.get("seeds") == data_seeds:
        return cached
    shift = token_shift(
        instruct,
        base,
        [data[tag, s] for s in data_seeds],
        [data["direct", s] for s in data_seeds],
        alpha,
        beta,
        config.temperature,
        device="cpu" if config.device == "auto" else config.device,
    )
    shift.update({"tag": tag, "seeds": data_seeds})
    write_json(path, shift)
    return shift


def _data_quality(prompts: list[Any], data: dict[tuple[str, int], Path]) -> dict[str, Any]:
    """How well each teacher dataset itself follows its prompts' instructions, its lengths and
    its distinct-2, per arm (``direct`` or a cell's tag): per seed and summarized over seeds."""
    from codit.evaluation.ifeval import evaluate, summarize
    from codit.experiments.grid import distinct_n
    from codit.experiments.stats import mean_ci
    from codit.io.jsonl import iter_records

    per_seed: dict[str, list[dict[str, Any]]] = {}
    for (arm, seed), path in sorted(data.items()):
        records = iter_records(path)
        answers = {r["id"]: r["messages"][-1]["content"] for r in records}
        metrics = summarize(evaluate(prompts, answers))
        per_seed.setdefault(arm, []).append(
            {
                "seed": seed,
                "records": len(records),
                **{m: metrics[m] for m in METRICS},
                "mean_completion_tokens": sum(r["meta"]["completion_tokens"] for r in records)
                / max(1, len(records)),
                "cut_at_max_tokens": sum(r["meta"]["finish_reason"] == "length" for r in records)
                / max(1, len(records)),
                "distinct_2": distinct_n(answers.values(), 2),
            }
        )
    keys = [*METRICS, "mean_completion_tokens", "cut_at_max_tokens", "distinct_2"]
    return {
        arm: {
            "per_seed": rows,
            "summary": {k: mean_ci([r[k] for r in rows]).to_dict() for k in keys},
        }
        for arm, rows in per_seed.items()
    }


def _results(
    config: CoditExperimentConfig,
    scores: dict[tuple[str, int], dict[str, Any]],
    teacher: dict[str, Any],
    data_quality: dict[str, Any],
    seeds: list[int],
    build: dict[str, Any],
    student: dict[str, Any],
    heldout_path: Path,
    n_heldout: int,
    runs: list[dict[str, Any]],
) -> dict[str, Any]:

    from codit import __version__
    from codit.config import to_dict
    from codit.experiments.stats import mean_ci, paired_ci

    def students(arm: str) -> dict[str, Any]:
        rows = [{"seed": s, **{m: scores[arm, s][m] for m in METRICS}} for s in seeds]
        return {
            "per_seed": rows,
            "summary": {m: mean_ci([r[m] for r in rows]).to_dict() for m in METRICS},
        }

    def versus_direct(arm: str) -> dict[str, Any]:
        return {
            m: paired_ci(
                [scores[arm, s][m] for s in seeds], [scores["direct", s][m] for s in seeds]
            ).to_dict()
            for m in METRICS
        }

    grid_cells = []
    for alpha, beta in config.grid:
        tag = cell_tag(alpha, beta)
        trained = (alpha, beta) in config.student_grid
        grid_cells.append(
            {
                "alpha": alpha,
                "beta": beta,
                "tag": tag,
                "teacher_data": data_quality[tag],
                "students": students(tag) if trained else None,
                "difference": versus_direct(tag) if trained else None,
            }
        )
    # the single-cell view (table, bars): the authors' cell when its students were trained
    main = default_cell(config.student_grid)
    main_tag = cell_tag(*main)
    arms = {"direct": students("direct"), "codit": students(main_tag)}
    difference = versus_direct(main_tag)
    return {
        "experiment": "codit-mini",
        "codit_version": __version__,
        "config": to_dict(config),
        "interval": INTERVAL,
        "metrics": list(METRICS),
        "seeds": seeds,
        "arms": arms,
        "difference": difference,
        "teacher_reference": {m: teacher[m] for m in METRICS},
        "teacher_data": {"direct": data_quality["direct"], "codit": data_quality[main_tag]},
        "cell": {"alpha": main[0], "beta": main[1], "tag": main_tag},
        "grid": grid_cells,
        "teacher": {"instruct": config.instruct, "base": config.base, "build": build},
        "student": student,
        "heldout": {"path": str(heldout_path), "prompts": n_heldout},
        **provenance(runs),  # machine, and the seconds of every run into this directory
    }


def quick_config(**overrides: Any) -> CoditExperimentConfig:
    """The ``--quick`` preset, with ``overrides`` on top."""
    return replace(CoditExperimentConfig(**QUICK), **overrides)
