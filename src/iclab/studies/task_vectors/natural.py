"""What the task-vectors study measures on a pretrained LM (``--model``): for each task family and
shot count, TD per layer and accuracy per task; the prompting control; task-vector patching;
fine-tuning of the first vs the last layers; and TD and accuracy over a series of checkpoints."""

from __future__ import annotations

import gc
from dataclasses import replace

import numpy as np

from iclab.errors import ConfigError, ModelLoadError
from iclab.models.hooks import anatomy
from iclab.models.load import check_model_path, load_model
from iclab.probes.decodability import LabelledInputs, TaskDecodability
from iclab.probes.task_accuracy import TaskAccuracy
from iclab.probes.task_text import EncodedPrompts, answer_tokens, encode_prompts
from iclab.probes.task_vectors import PatchingPrompts, TaskVectorPatching, task_vectors
from iclab.progress import progress_bar
from iclab.rows import Row, Rows
from iclab.runs.run import Run
from iclab.studies.task_vectors.config import TaskVectorsConfig
from iclab.studies.task_vectors.curves import family_td, points_r2, td_accuracy_points
from iclab.tasks import build_prompts, get_task, task_names
from iclab.train.finetune import AnswerSequences, finetuned, tuned_layers


def family_tasks(family: str, conllu: str | None):
    """The family's tasks (the Null task last) by name."""
    return {name: get_task(name, conllu=conllu if family == "pos" else None) for name in task_names(family)}


def family_prompts(tasks: dict, rng: np.random.Generator, n: int, k: int, tokenizer, *, with_null: bool = True,
                   instruct: bool = False) -> EncodedPrompts:
    """``n`` k-shot prompts per task, tokenised together (task by task)."""
    prompts = []
    for task in tasks.values():
        if with_null or not task.is_null:
            prompts += build_prompts(task, rng, n, k, instruct=instruct)
    return encode_prompts(tokenizer, prompts)


def finetuned_name(model_name: str, cfg: TaskVectorsConfig, layers: list[int], end: str) -> str:
    return f"{model_name}+{cfg.finetune.method}-{end}{len(layers)}"


def measure_family(model, tokenizer, family: str, tasks: dict, shots: int, cfg: TaskVectorsConfig, rng,
                   model_name: str) -> Rows:
    """TD per layer (all tasks, Null included; the mean's rows labelled with the family) and accuracy
    per task (Null excluded) and its mean, at ``shots``; rows with ``pos`` = shots."""
    nat = cfg.natural
    enc = family_prompts(tasks, rng, nat.n_prompts, shots, tokenizer)
    td = TaskDecodability(k=nat.k, batch_size=nat.batch_size)(
        model, LabelledInputs(enc.ids, enc.query_positions, enc.tasks))
    not_null = np.array([not tasks[t].is_null for t in enc.tasks])
    acc = TaskAccuracy(max_new_tokens=nat.max_new_tokens, batch_size=nat.batch_size)(model, enc.select(not_null))
    rows = Rows(replace(r, label=family) if r.metric == "td" else r for r in td.rows)
    rows += acc.rows + [Row("accuracy", "accuracy_mean", float(acc.arrays["correct"].mean()), label=family)]
    return rows.tagged(pos=shots, model=model_name)


def measure_pretrained(cfg: TaskVectorsConfig, run: Run, model_name: str) -> None:
    """Every natural-task measurement on ``model_name``, then on each of ``natural.checkpoints``."""
    model, tokenizer = load_model(model_name, tokenizer="required", settings=cfg.model)
    nat = cfg.natural
    n_layers = anatomy(model).n_layers
    if cfg.patching.enabled and cfg.patching.layers is not None:
        bad = [layer for layer in cfg.patching.layers if not 0 <= layer < n_layers]
        if bad:
            raise ConfigError(f"patching.layers {bad} out of range; {model_name} has layers 0..{n_layers - 1}")
    for c in nat.checkpoints:  # before hours of measurement on the main model, not after
        try:
            check_model_path(c)
        except ModelLoadError as e:
            raise ConfigError(f"natural.checkpoints: {e}") from None
    run.save_arrays("natural", n_layers=n_layers)
    stages = len(set(nat.shots) | {nat.main_shots}) + nat.prompting_control + cfg.patching.enabled \
        + cfg.finetune.enabled
    with progress_bar() as bar:
        task = bar.add_task(f"natural tasks, {model_name}",
                            total=len(nat.families) * stages + len(nat.checkpoints), info="")

        def done(what: str) -> None:
            bar.update(task, advance=1, info=what)

        rows = Rows()
        for family in nat.families:
            rows += measure_natural(model, tokenizer, family, cfg, model_name, n_layers, done)
        run.save_rows(rows)
        del model
        gc.collect()
        if nat.checkpoints:
            run.save_rows(rows + measure_checkpoints(cfg, done))


def measure_natural(model, tokenizer, family: str, cfg: TaskVectorsConfig, model_name: str, n_layers: int,
                    done) -> Rows:
    """Every natural-task measurement of one family; ``done(stage)`` is called after each stage."""
    nat = cfg.natural
    tasks = family_tasks(family, nat.conllu)
    answer = [t for t in tasks if not tasks[t].is_null]
    rows = Rows()
    for shots in sorted(set(nat.shots) | {nat.main_shots}):
        rows += measure_family(model, tokenizer, family, tasks, shots, cfg,
                               np.random.default_rng([cfg.seed, 2, shots]), model_name)
        done(f"{family} {shots}-shot")
    best_layer = int(np.argmax(family_td(rows, family, nat.main_shots)))

    # TD of each task at the best layer of the main shot count, against its accuracy
    scatter = [p for s in nat.shots for p in td_accuracy_points(rows, answer, s, best_layer, s)]
    rows.append(Row("td_vs_accuracy", "r2", points_r2(scatter), layer=best_layer, model=model_name, label=family))

    if nat.prompting_control:
        enc = family_prompts(tasks, np.random.default_rng([cfg.seed, 4]), nat.n_prompts, 0, tokenizer,
                             with_null=False, instruct=True)
        ctrl = TaskAccuracy(max_new_tokens=nat.max_new_tokens, batch_size=nat.batch_size)(model, enc)
        rows += ctrl.rows.tagged(probe="prompting", pos=0, model=model_name)
        done(f"{family} prompting")
    if cfg.patching.enabled:
        layers = cfg.patching.layers if cfg.patching.layers is not None else [best_layer]
        rows += patching(model, tokenizer, tasks, layers, cfg, model_name)
        done(f"{family} patching")
    if cfg.finetune.enabled:
        rows += finetune(model, tokenizer, tasks, family, cfg, model_name, n_layers)
        done(f"{family} fine-tuning")
    return rows


def measure_checkpoints(cfg: TaskVectorsConfig, done) -> Rows:
    """Every checkpoint of ``natural.checkpoints`` in turn (one in memory at a time): TD per layer and
    accuracy per task at ``main_shots``, on the same prompts for every checkpoint. Rows carry
    ``step`` = the checkpoint's index and ``model`` = its name; then R² of TD against accuracy over
    every task and checkpoint, per family."""
    nat = cfg.natural
    rows = Rows()
    scatter: dict[str, list] = {f: [] for f in nat.families}
    tasks_of = {f: family_tasks(f, nat.conllu) for f in nat.families}  # the same tasks for every checkpoint
    for i, name in enumerate(nat.checkpoints):
        model, tokenizer = load_model(name, tokenizer="required", settings=cfg.model)
        for family, tasks in tasks_of.items():
            fam = measure_family(model, tokenizer, family, tasks, nat.main_shots, cfg,
                                 np.random.default_rng([cfg.seed, 2, nat.main_shots]), name).tagged(step=i)
            rows += fam
            best = int(np.argmax(family_td(fam, family, nat.main_shots)))
            scatter[family] += td_accuracy_points(fam, [t for t in tasks if not tasks[t].is_null], nat.main_shots,
                                                  best, i)
        del model
        gc.collect()
        done(f"checkpoint {i}")
    for family, pts in scatter.items():
        rows.append(Row("td_vs_accuracy_checkpoints", "r2", points_r2(pts), label=family))
    return rows


def patching(model, tokenizer, tasks: dict, layers: list[int], cfg: TaskVectorsConfig, model_name: str) -> Rows:
    """Patching rows for every seed and layer (``pos`` = query shots)."""
    p, nat = cfg.patching, cfg.natural
    null = next(name for name, t in tasks.items() if t.is_null)
    rows = Rows()
    for s in range(p.n_seeds):
        rng = np.random.default_rng([cfg.seed, 5, s])
        demos = family_prompts(tasks, rng, p.demo_prompts, nat.main_shots, tokenizer)
        vectors = task_vectors(model, demos, layers, where=p.where, batch_size=nat.batch_size)
        queries = family_prompts(tasks, rng, p.query_prompts, p.query_shots, tokenizer, with_null=False)
        for li, layer in enumerate(layers):
            probe = TaskVectorPatching(layer=layer, mode=p.mode, max_new_tokens=nat.max_new_tokens,
                                       batch_size=nat.batch_size)
            res = probe(model, PatchingPrompts(queries, {t: v[li] for t, v in vectors.items()}, null))
            rows += res.rows.tagged(pos=p.query_shots, model=model_name)
    return rows


def finetune(model, tokenizer, tasks: dict, family: str, cfg: TaskVectorsConfig, model_name: str,
             n_layers: int) -> Rows:
    """Fine-tuning (``finetune.method``) of the first and of the last layers, then TD and accuracy at
    ``main_shots`` of each tuned model (its accuracy rows under probe ``finetune``)."""
    nat, ft = cfg.natural, cfg.finetune
    train_set = family_prompts(tasks, np.random.default_rng([cfg.seed, 6]), ft.train_prompts, nat.main_shots,
                               tokenizer, with_null=False)
    data = AnswerSequences(*answer_tokens(train_set), pad_id=train_set.pad_id)
    rows = Rows()
    for end in ("first", "last"):
        layers = tuned_layers(n_layers, ft.n_layers, end)
        with finetuned(model, data, layers, ft, seed=cfg.seed) as tuned:  # model itself, restored after
            r = measure_family(tuned, tokenizer, family, tasks, nat.main_shots, cfg,
                               np.random.default_rng([cfg.seed, 2, nat.main_shots]),
                               finetuned_name(model_name, cfg, layers, end))
        rows += [replace(x, probe="finetune") if x.probe == "accuracy" else x for x in r]
        gc.collect()
    return rows
