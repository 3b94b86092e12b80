"""Task-vectors study: the synthetic part and the natural part end to end on tiny models, the
curves it reads off its rows, and its config errors. Numbers are meaningless at this size; every
step runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import iclab
from helpers import check_report_rebuilds
from iclab.errors import ConfigError, ModelLoadError
from iclab.models.build import ModelSpec, build_model
from iclab.probes.decodability import gather_hidden
from iclab.studies.task_vectors import TaskVectorsConfig
from iclab.studies.task_vectors.curves import marked_steps
from iclab.studies.task_vectors.synthetic import measure_synthetic
from iclab.tasks import task_names

N_LAYERS, D_MODEL = 2, 32
#: the paper's world, whatever the cpu preset shrinks it to
WORLD = {"world.bases": "orthogonal-4x16", "world.points": 20, "model.max_len": 40}


def test_marked_steps_follow_the_gain_over_predicting_zero():
    steps = np.array([0, 10, 20, 30, 40])
    loss = np.array([6.0, 3.9, 2.0, 0.5, 0.4])  # the first drop, to 4 = predicting 0, is no in-context gain
    assert marked_steps(steps, loss, [0.05, 0.5, 0.9], reference=4.0) == [20, 30]
    assert marked_steps(steps, np.array([6.0, 4.1, 4.0, 4.2, 4.05]), [0.5], reference=4.0) == []


def test_td_reads_the_last_x_and_the_panels_the_last_y():
    from iclab.config import load_config
    from iclab.models.vector import VectorModel

    cfg = load_config(TaskVectorsConfig, "task-vectors", "cpu", {**WORLD, "model.n_layers": 2, "model.d_model": 32,
                                                                 "model.n_heads": 2, "probe.k": 3})
    world = cfg.world
    model = VectorModel(cfg.model, world.dim, seed=0)
    prompts = world.prompts(np.random.default_rng(0), 24)
    saved = []
    rows = measure_synthetic(model, prompts, cfg, saved.append)
    last_x, last_y = 2 * world.points - 2, 2 * world.points - 1  # x_K and y_K of the interleaved sequence
    assert {(r.pos, r.layer) for r in rows if r.metric == "td"} == {(p, l) for p in (last_x, last_y) for l in (0, 1)}
    inputs = {"xs": torch.from_numpy(prompts.xs), "ys": torch.from_numpy(prompts.ys)}
    index = np.stack([np.arange(24), np.full(24, last_y)], axis=1)
    (H,) = saved
    np.testing.assert_allclose(H, gather_hidden(model, inputs, index, [0, 1]), rtol=1e-5, atol=1e-6)

    same = cfg.model_copy(update={"probe": cfg.probe.model_copy(update={"td_position": "last_y"})})
    assert {r.pos for r in measure_synthetic(model, prompts, same) if r.metric == "td"} == {last_y}


def test_finetune_method_is_validated():
    with pytest.raises(ConfigError, match="finetune.method"):
        iclab.run("task-vectors", preset="cpu", overrides={"finetune.method": "qlora"})


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU autocast trains between half-precision layers")
def test_half_precision_finetuning_on_the_cpu_is_refused_before_the_run(char_lm_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"model.dtype = 'bfloat16' with finetune.enabled = true needs a GPU"):
        iclab.run("task-vectors", overrides={"finetune.enabled": True, "model.dtype": "bfloat16"},
                  model=str(char_lm_dir), out=tmp_path)
    assert not any(tmp_path.iterdir())


SYNTHETIC = {**WORLD, "train.steps": 20, "train.eval_every": 10, "train.ckpt_every": 10, "train.batch_size": 16,
             "train.warmup": 2, "model.n_layers": 2, "model.d_model": 32, "model.n_heads": 2,
             "probe.n_per_basis": 12, "probe.eval_per_basis": 3, "probe.umap": False,
             "world.curriculum": {"bases": {"start": 2, "every": 10}, "rank": {"start": 1, "every": 10},
                                  "points": {"start": 10, "inc": 5, "every": 8}, "rank_per_basis": True}}
NATURAL = {"natural.shots": [0, 1], "natural.main_shots": 1, "natural.n_prompts": 11, "natural.k": 3,
           "natural.batch_size": 32, "patching.demo_prompts": 3, "patching.query_prompts": 3,
           "patching.n_seeds": 3, "patching.layers": [0, 1], "finetune.enabled": True, "finetune.n_layers": 1,
           "finetune.steps": 2, "finetune.batch_size": 4, "finetune.train_prompts": 4}


def test_synthetic_part_end_to_end(tmp_path):
    run = iclab.run("task-vectors", preset="cpu", overrides=SYNTHETIC, out=tmp_path)
    rows = run.load_rows()
    steps = sorted({r.step for r in rows if r.probe == "td"})
    assert steps == [0, 10, 20]
    assert {(r.layer, r.step) for r in rows if r.metric == "td"} == {(l, s) for l in range(2) for s in steps}
    assert {r.label for r in rows if r.probe == "synthetic" and r.metric == "loss"} == {"all", "0", "1", "2", "3"}
    models = {r.model for r in rows if r.probe == "regression"}
    assert models == {"transformer", "least-squares", "ridge", "lasso", "oracle-lasso", "averaging"}
    assert {r.pos for r in rows if r.probe == "regression"} == set(range(20))
    figures = {p.name for p in (run.path / "figures").iterdir()}
    assert {"loss_and_td.png", "pca_by_step.png", "pca_by_layer.png", "td_profile.png", "error_vs_k.png",
            "td_vs_loss.png"} <= figures
    (r2,) = [r for r in rows if r.probe == "td_vs_loss"]
    assert r2.metric == "r2" and r2.step == 20 and (np.isnan(r2.value) or 0 <= r2.value <= 1)
    assert (run.path / "report.html").is_file() and run.meta["status"] == "done"
    assert {r.pos for r in rows if r.metric == "td"} == {38, 39}  # the last x (TD), the last y (the panels)
    assert "best mean TD at the last y" in (run.path / "report.html").read_text()
    assert "curriculum: bases from 2 by 1 every 10 steps, basis rank from 1 by 1 every 10 steps, points from 10 by 5 every 8 steps, the rank ramp restarting for each basis as it enters" in (run.path / "report.html").read_text()
    assert (run.path / "models" / "transformer" / "model.safetensors").is_file()
    check_report_rebuilds(run.path)


def test_natural_part_end_to_end(char_lm_dir, tmp_path):
    run = iclab.run("task-vectors", preset="cpu", overrides=NATURAL, model=str(char_lm_dir), out=tmp_path)
    rows = run.load_rows()
    td = {(r.label, r.pos) for r in rows if r.metric == "td"}
    assert td == {(f, s) for f in ("bitwise", "pos") for s in (0, 1)}
    acc = {r.label for r in rows if r.probe == "accuracy" and r.metric == "accuracy"}
    assert acc == {n for n in task_names() if not n.endswith("-null")}
    assert {r.label for r in rows if r.metric == "r2"} == {"bitwise", "pos"}
    assert {r.label for r in rows if r.probe == "prompting"} == acc
    patch_rows = [r for r in rows if r.probe == "patching" and r.metric == "delta_task"]
    assert len(patch_rows) == 3 * 2 * len(acc)  # seeds x layers x tasks
    assert {r.model for r in rows if r.probe == "finetune"} == {f"{char_lm_dir}+lora-first1", f"{char_lm_dir}+lora-last1"}
    assert "LoRA rank 16" in (run.path / "report.html").read_text()
    figures = {p.name for p in (run.path / "figures").iterdir()}
    assert {"td_bitwise.png", "td_pos.png", "td_vs_accuracy.png", "finetune_accuracy.png"} <= figures
    assert run.meta["status"] == "done"
    check_report_rebuilds(run.path)


def test_full_finetuning_through_the_study(char_lm_dir, tmp_path):
    overrides = {**NATURAL, "natural.shots": [1], "natural.prompting_control": False, "patching.enabled": False,
                 "finetune.method": "full"}
    run = iclab.run("task-vectors", preset="cpu", overrides=overrides, model=str(char_lm_dir), out=tmp_path)
    rows = run.load_rows()
    assert {r.model for r in rows if r.probe == "finetune"} == {f"{char_lm_dir}+full-first1", f"{char_lm_dir}+full-last1"}
    assert "Full tuning of every parameter of the chosen layers" in (run.path / "report.html").read_text()


def test_td_and_accuracy_over_checkpoints(char_lm_dir, char_tokenizer, tmp_path):
    second = tmp_path / "ckpt-b"
    spec = ModelSpec(family="gpt2", n_layers=N_LAYERS, d_model=D_MODEL, n_heads=4, max_len=512)
    build_model(spec, len(char_tokenizer), seed=1).save_pretrained(second)
    char_tokenizer.save_pretrained(second)
    ckpts = [str(char_lm_dir), str(second)]
    overrides = {**NATURAL, "natural.shots": [1], "natural.prompting_control": False, "patching.enabled": False,
                 "finetune.enabled": False, "natural.checkpoints": ckpts}
    run = iclab.run("task-vectors", preset="cpu", overrides=overrides, model=str(char_lm_dir), out=tmp_path / "runs")
    rows = run.load_rows()
    over = [r for r in rows if r.metric == "accuracy_mean" and r.model in ckpts and r.step in (0, 1)]
    assert {(r.model, r.step, r.label) for r in over} == {(c, i, f) for i, c in enumerate(ckpts)
                                                          for f in ("bitwise", "pos")}
    # the first checkpoint is the main model on the same prompts: the same accuracy
    main = {r.label: r.value for r in rows if r.metric == "accuracy_mean" and r.step is None}
    assert {r.label: r.value for r in over if r.step == 0} == main
    assert {r.label for r in rows if r.probe == "td_vs_accuracy_checkpoints"} == {"bitwise", "pos"}
    figures = {p.name for p in (run.path / "figures").iterdir()}
    assert {"over_checkpoints.png", "td_vs_accuracy_checkpoints.png"} <= figures
    check_report_rebuilds(run.path)


def test_a_missing_checkpoint_is_refused_before_any_work(char_lm_dir, tmp_path):
    with pytest.raises(ConfigError, match="natural.checkpoints.*does not exist"):
        iclab.run("task-vectors", preset="cpu", overrides={**NATURAL, "natural.checkpoints": ["./nope"]},
                  model=str(char_lm_dir), out=tmp_path)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="probe.baselines"):
        iclab.run("task-vectors", preset="cpu", overrides={"probe.baselines": ["ols"]})
    with pytest.raises(ConfigError, match="max_len"):
        iclab.run("task-vectors", preset="cpu", overrides={"model.max_len": 16})


def test_a_model_without_tokenizer_is_refused(char_lm, tmp_path):
    char_lm.save_pretrained(tmp_path / "no-tok")
    with pytest.raises(ModelLoadError, match="no tokenizer"):
        iclab.run("task-vectors", preset="cpu", overrides=NATURAL, model=str(tmp_path / "no-tok"),
                  out=tmp_path / "runs")
