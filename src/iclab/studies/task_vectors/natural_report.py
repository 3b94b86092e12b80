"""The task-vectors report of a pretrained LM, from the stored run's rows."""

from __future__ import annotations

import numpy as np

from iclab.rows import Rows
from iclab.runs.report import Figure, Report, Section, Table
from iclab.runs.run import Run
from iclab.studies.task_vectors import figures as figs
from iclab.studies.task_vectors.config import TaskVectorsConfig
from iclab.studies.task_vectors.curves import family_td, td_accuracy_points
from iclab.tasks import NULL, task_names
from iclab.train.finetune import tuned_layers


def answer_tasks(family: str) -> list[str]:
    """The family's tasks that have an answer (all but Null), in order."""
    return [t for t in task_names(family) if not t.endswith(f"-{NULL}")]


def mean_sd(values: np.ndarray) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return (float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0) if len(a) else (float("nan"), 0.0)


def report_pretrained(cfg: TaskVectorsConfig, run: Run, model_name: str) -> Report:
    """Figures and tables of the natural part."""
    nat, p, ft = cfg.natural, cfg.patching, cfg.finetune
    rows = run.load_rows()
    main = rows.where(model=model_name, step=None)
    n_layers = int(run.load_arrays("natural")["n_layers"])
    all_shots = sorted(set(nat.shots) | {nat.main_shots})
    summaries, td_figs, scatter, r2, deltas, ft_acc, ft_td = [], [], {}, {}, {}, {}, {}
    for family in nat.families:
        tasks = answer_tasks(family)
        td_curves = {f"{s}-shot": family_td(main, family, s) for s in all_shots}
        best_layer = int(np.argmax(td_curves[f"{nat.main_shots}-shot"]))
        scatter[family] = [pt for s in nat.shots for pt in td_accuracy_points(main, tasks, s, best_layer, s)]
        r2[family] = main.where(probe="td_vs_accuracy", label=family).value("r2")
        accuracy = {s: main.where(probe="accuracy", label=family, pos=s).value("accuracy_mean") for s in all_shots}
        summaries.append([family, best_layer, float(td_curves[f"{nat.main_shots}-shot"].max()),
                          1 / len(task_names(family)), *[accuracy[s] for s in nat.shots], r2[family]])
        td_figs.append(Figure(run.save_figure(figs.td_profiles(td_curves, np.arange(n_layers),
                                                               f"{family}: TD across layers",
                                                               chance=1 / len(task_names(family))), f"td_{family}"),
                              f"{family}: TD per layer at the token before the answer, per shot count."))
        if p.enabled:
            patched = main.where(probe="patching", label=set(tasks))
            for layer in p.layers if p.layers is not None else [best_layer]:
                deltas[f"{family} L{layer}"] = {
                    t: {c: mean_sd(patched.where(layer=layer, label=t, metric=f"delta_{c}").values())
                        for c in ("task", "null")} for t in tasks}
        if ft.enabled:
            ft_acc[family] = {"before": accuracy[nat.main_shots]}
            ft_td[family] = {"before": float(td_curves[f"{nat.main_shots}-shot"].max())}
            for end in ("first", "last"):
                layers = tuned_layers(n_layers, ft.n_layers, end)
                tuned = rows.where(model=f"{model_name}+{ft.method}-{end}{len(layers)}", pos=nat.main_shots)
                ft_acc[family][f"{end} {len(layers)}"] = tuned.where(probe="finetune", label=family).value(
                    "accuracy_mean")
                ft_td[family][f"{end} {len(layers)}"] = float(family_td(tuned, family, nat.main_shots).max())

    fig_scatter = run.save_figure(figs.td_vs_accuracy(scatter, r2), "td_vs_accuracy")
    sections = [
        Section("Summary", tables=[Table(
            ["family", "best layer", f"best TD ({nat.main_shots}-shot)", "chance",
             *[f"accuracy {s}-shot" for s in nat.shots], "R² (TD, accuracy)"], summaries,
            caption=f"{nat.n_prompts} prompts per task; TD over the family's tasks and its Null task, "
                    f"k = {nat.k}.")]),
        Section("Task decodability", figures=td_figs),
        Section("TD against accuracy", "One point per task and shot count; TD of the task at the family's best "
                f"layer at {nat.main_shots} shots.",
                figures=[Figure(fig_scatter, "TD against exact-match accuracy, with R².")])]
    if deltas:
        figs_p = [Figure(run.save_figure(figs.patching_bars(d, f"{name}: {p.mode} at the query"),
                                         f"patching_{name.replace(' ', '_')}"),
                         f"{name}: accuracy change when the query state is patched with the true task's vector or "
                         "the Null vector.") for name, d in deltas.items()]
        sections.append(Section("Task-vector patching",
                                f"Task vector: mean resid_post at the patched layer over {p.demo_prompts} "
                                f"{nat.main_shots}-shot prompts per task ({p.where}); written ({p.mode}) at the "
                                f"query's -> of {p.query_prompts} {p.query_shots}-shot prompts per task; "
                                f"error bars: standard deviation over {p.n_seeds} seeds.", figures=figs_p))
    if ft_acc:
        how = "LoRA" if ft.method == "lora" else "full tuning"
        f_acc = run.save_figure(figs.finetune_bars(ft_acc, "accuracy", f"Accuracy before and after {how}"),
                                "finetune_accuracy")
        f_td = run.save_figure(figs.finetune_bars(ft_td, "best TD", f"Best-layer TD before and after {how}"),
                               "finetune_td")
        setting = (f"LoRA rank {ft.rank}, alpha {ft.alpha}, dropout {ft.dropout}" if ft.method == "lora"
                   else "Full tuning of every parameter of the chosen layers, the rest frozen")
        sections.append(Section("Fine-tuning first vs last layers",
                                f"{setting}, lr {ft.lr}, {ft.steps} steps of {ft.batch_size} prompts, "
                                "loss on the answer only.",
                                figures=[Figure(f_acc, "Mean accuracy"), Figure(f_td, "Best-layer TD")]))
    if nat.checkpoints:
        sections.append(checkpoints_section(cfg, run, rows))
    return Report(
        title=f"Task vectors in {model_name}",
        summary=(f"Natural tasks ({', '.join(nat.families)}) with {', '.join(map(str, nat.shots))} shots: greedy "
                 "exact-match accuracy and task decodability at the token before the answer, layer by layer. "
                 "Han et al. (ICML 2025): TD peaks at a middle layer and tracks accuracy; patching the true "
                 "task's vector into a zero-shot query helps, the Null vector does not."),
        sections=sections)


def checkpoints_section(cfg: TaskVectorsConfig, run: Run, rows: Rows) -> Section:
    """Best-layer TD and accuracy at ``main_shots`` over ``natural.checkpoints`` (rows with ``step`` =
    the checkpoint's index), and TD against accuracy over every task and checkpoint."""
    nat = cfg.natural
    names = list(nat.checkpoints)
    td = {f: [] for f in nat.families}
    acc = {f: [] for f in nat.families}
    scatter = {f: [] for f in nat.families}
    for i, name in enumerate(names):
        at = rows.where(model=name, step=i)
        for family in nat.families:
            per_layer = family_td(at, family, nat.main_shots)
            td[family].append(float(per_layer.max()))
            acc[family].append(at.where(probe="accuracy", label=family).value("accuracy_mean"))
            scatter[family] += td_accuracy_points(at, answer_tasks(family), nat.main_shots,
                                                  int(np.argmax(per_layer)), i)
    r2 = {f: rows.where(probe="td_vs_accuracy_checkpoints", label=f).value("r2") for f in nat.families}
    f_line = run.save_figure(figs.over_checkpoints(names, {f: np.array(v) for f, v in td.items()},
                                                   {f: np.array(v) for f, v in acc.items()}), "over_checkpoints")
    f_sc = run.save_figure(figs.td_vs_accuracy(scatter, r2), "td_vs_accuracy_checkpoints")
    return Section("Over training checkpoints",
                   f"{len(names)} checkpoints, in order: {', '.join(names)}. {nat.main_shots}-shot prompts (the same "
                   "for every checkpoint); TD at each checkpoint's best layer.",
                   figures=[Figure(f_line, "Best-layer mean TD and mean accuracy per checkpoint."),
                            Figure(f_sc, "One point per task and checkpoint (task@index), with R².")])
