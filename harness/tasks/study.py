"""The accuracy-vs-cost study as one command sequence (suites describe cost sweeps only):

1. synthesise the keyword-spotting set (skipped when the folder already holds it),
2. train every variant with the same recipe (skipped per checkpoint already trained so),
3. measure cost with the `accuracy` suite into the run folder, prompt and answer lengths set
   to the trained ones (resumed when the run exists),
4. evaluate every checkpoint on the test split and append the `task` rows to the same run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness import store
from harness.api import run_suite
from harness.tasks import load_dataset
from harness.tasks.evaluate import EvalOptions, Evaluation, evaluate
from harness.tasks.rows import ensure_run, task_rows
from harness.tasks.synth_kws import SynthConfig, generate
from harness.tasks.train_run import TrainJob, already_trained, run_training
from harness.threads import DEFAULT_THREADS
from models.tokenizer import ByteTokenizer
from models.train import Recipe, StepLog, load_checkpoint, prompt_ids

SUITE = "accuracy"


@dataclass(frozen=True)
class Study:
    out: Path  # the run folder
    data: Path
    variants: tuple[str, ...]
    size: str
    recipe: Recipe
    synth: SynthConfig
    eval_batch_size: int = 16
    device: str = "cpu"
    measure_cost: bool = True
    threads: int = DEFAULT_THREADS  # torch CPU threads of the training, evaluation and cost sweep alike

    def checkpoint(self, variant: str) -> Path:
        return self.out / "checkpoints" / variant.replace("+", "_")


@dataclass
class Outcome:
    variant: str
    evaluation: Evaluation
    training: dict


def _cost(study: Study, prompt_tokens: int, new_tokens: int, device: str) -> None:
    """The cost sweep into the study's folder, or the rest of it when an earlier one stopped."""
    if (study.out / store.RUN_META).exists():
        run_suite(None, out=study.out, resume=True)
        return
    settings = {"grid.variant": list(study.variants), "grid.size": [study.size],
                "measure.prompt_tokens": prompt_tokens, "measure.new_tokens": new_tokens, "run.device": device,
                "run.threads": study.threads}
    # The folder already holds the checkpoints: the run is added beside them (nothing is deleted).
    run_suite(SUITE, out=study.out, overrides=settings, overwrite=True)


def run_study(study: Study, say: Callable[[str], None] = print,
              on_step: Callable[[str], Callable[[StepLog], None]] | None = None) -> list[Outcome]:
    counts, written = generate(study.data, study.synth)
    say(f"data: {'wrote ' + str(sum(counts.values())) + ' clips to' if written else 'reusing'} {study.data}")
    trained = {}
    for variant in study.variants:
        job = TrainJob(variant=variant, size=study.size, task="kws", data=study.data,
                       out=study.checkpoint(variant), recipe=study.recipe, device=study.device)
        if already_trained(job):
            say(f"train {variant}: reusing {job.out}")
        else:
            record = run_training(job, on_step(variant) if on_step else None)
            say(f"train {variant}: {record['steps']} steps in {record['train_seconds']:.0f} s, "
                f"final loss {record['final_loss']:.3f}")
        trained[variant] = load_checkpoint(job.out, device=study.device)
    test = load_dataset("kws", study.data, "test")
    first = next(iter(trained.values()))
    prompt_tokens = len(prompt_ids(ByteTokenizer(), test.question, first.prompt_template))
    new_tokens = int(first.config["training"]["max_new_tokens"])
    if study.measure_cost:
        _cost(study, prompt_tokens, new_tokens, study.device)
        say(f"cost: measured with suite {SUITE!r} into {study.out}")
    run_id, suite = ensure_run(study.out, study.variants[0], study.size, test.clip_seconds, study.threads)
    outcomes = []
    for variant, checkpoint in trained.items():
        evaluation = evaluate(checkpoint, test, EvalOptions(batch_size=study.eval_batch_size))
        rows = task_rows(checkpoint.lalm, evaluation, str(study.checkpoint(variant)), run_id, suite)
        store.append_rows(study.out, rows)
        outcomes.append(Outcome(variant, evaluation, checkpoint.config["training"]))
    return outcomes


def summary_table(outcomes: list[Outcome]) -> str:
    """variant | accuracy | macro-F1 | exact-match rate | steps | training seconds."""
    lines = [f"{'variant':<12}{'accuracy':>10}{'macro_f1':>10}{'exact':>8}{'steps':>7}{'train_s':>9}"]
    for outcome in outcomes:
        scores = {s.metric: s.value for s in outcome.evaluation.scores}
        lines.append(f"{outcome.variant:<12}{scores['accuracy']:>10.3f}{scores['macro_f1']:>10.3f}"
                     f"{scores['exact_match_rate']:>8.2f}{outcome.training['steps']:>7}{outcome.training['train_seconds']:>9.0f}")
    return "\n".join(lines)
