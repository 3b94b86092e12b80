"""Tests of the task-vectors probes and study (spec task_vectors.md).

Known answers: TD is 1 on features that are a function of the task and exactly chance on
identical features (through a tiny model and on arrays); a patch at the last layer gives
the next token ``argmax lm_head(ln_f(v))``, computable by hand; task vectors are the means
of the captured states at the arrow tokens. End to end, both parts of the study run on
tiny models: the synthetic part on a small VectorModel, the natural part on a tiny GPT-2
saved with an offline character-level tokenizer (numbers meaningless, every step runs).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

import iclab
from iclab.errors import ConfigError, ModelLoadError, ProbeInputError
from iclab.models.build import ModelSpec, build_model
from iclab.models.capture import capture
from iclab.models.hooks import anatomy, hook_count
from iclab.models.names import act_name
from iclab.probes.decodability import LabelledInputs, TaskDecodability, gather_hidden, td_result
from helpers import check_probe_contract
from iclab.probes.task_accuracy import TaskAccuracy, correct, exact_match, greedy_continuations
from iclab.probes.task_text import encode_prompts
from iclab.probes.task_vectors import PatchingPrompts, TaskVectorPatching, patch_edits, task_vectors
from iclab.studies.task_vectors import TaskVectorsConfig, marked_steps, measure_synthetic, r_squared
from iclab.studies.task_vectors_finetune import (FinetuneSettings, answer_batches, finetune_layers, linear_targets,
                                                 tuned_layers)
from iclab.tasks import build_prompts, get_task, shipped_sentences, task_names

N_LAYERS, D_MODEL = 2, 32


# ---------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """The study by name, whether or not ``iclab.studies.STUDIES`` lists it yet."""
    from iclab import studies

    if "task-vectors" not in studies.STUDIES:
        monkeypatch.setitem(studies.STUDIES, "task-vectors", studies.Study(
            "task-vectors", "Task vectors (Han et al. 2025)", "iclab.studies.task_vectors"))


def char_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer covering every task's text, built offline."""
    texts = [s.text for s in shipped_sentences()] + [get_task(n).instruction for n in task_names()]
    chars = sorted(set("".join(texts)) | set("01 ->\n"))
    vocab = {"[PAD]": 0, "[UNK]": 1, **{c: i + 2 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # one token per character
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")


@pytest.fixture(scope="module")
def tokenizer():
    return char_tokenizer()


@pytest.fixture(scope="module")
def lm(tokenizer):
    spec = ModelSpec(family="gpt2", n_layers=N_LAYERS, d_model=D_MODEL, n_heads=4, max_len=512)
    return build_model(spec, len(tokenizer), seed=0).eval()


@pytest.fixture(scope="module")
def saved_lm(lm, tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-char-gpt2")
    lm.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def bitwise_enc(tokenizer):
    rng = np.random.default_rng(0)
    prompts = [p for name in ("bitwise-xor", "bitwise-and", "bitwise-null")
               for p in build_prompts(get_task(name), rng, 6, k=2)]
    return encode_prompts(tokenizer, prompts)


# ---------------------------------------------------------------- TD


def test_td_of_separated_clusters_is_one_and_of_identical_points_is_chance():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.array(["a", "b", "c", "d"]), 30)
    centres = 20 * rng.standard_normal((4, 8))
    separated = centres[np.repeat(np.arange(4), 30)] + rng.standard_normal((120, 8))
    identical = np.zeros((120, 8))
    noise = rng.standard_normal((120, 8))
    res = td_result(np.stack([separated, identical, noise]), labels, layers=[3, 5, 7])
    assert res.arrays["td"][0] == 1.0
    assert res.arrays["td"][1] == pytest.approx(0.25)  # every vote goes to the first points by index: one task
    assert abs(res.arrays["td"][2] - 0.25) < 0.15
    assert {(r.metric, r.layer) for r in res.rows if r.label is None} == {("td", 3), ("td", 5), ("td", 7)}
    per_task = [r for r in res.rows if r.metric == "td_task" and r.layer == 3]
    assert sorted(r.label for r in per_task) == ["a", "b", "c", "d"] and all(r.value == 1.0 for r in per_task)
    assert {r.probe for r in res.rows} == {"td"}


def test_td_through_a_tiny_model(lm):
    # prompts made of one token repeated: the state at any position is a function of that token
    labels = np.repeat(np.arange(4), 12)
    task_tokens = torch.tensor([5, 9, 13, 17])[torch.as_tensor(labels)]
    informative = task_tokens[:, None].repeat(1, 6)  # (48, 6)
    probe = TaskDecodability(k=5, batch_size=7, keep_hidden=True)
    res = probe(lm, LabelledInputs(informative, np.full(48, 5), labels))
    assert res.arrays["td"].tolist() == [1.0] * N_LAYERS
    assert res.arrays["hidden"].shape == (N_LAYERS, 48, D_MODEL)
    same = torch.full((48, 6), 5)
    res = probe(lm, LabelledInputs(same, np.full(48, 5), labels))
    assert res.arrays["td"].tolist() == [0.25] * N_LAYERS
    assert hook_count(lm) == 0


def test_gather_hidden_matches_capture(lm):
    ids = torch.randint(0, 40, (5, 9), generator=torch.Generator().manual_seed(1))
    index = np.array([[0, 3], [4, 8], [0, 0], [2, 5]])
    H = gather_hidden(lm, ids, index, layers=[1, 0], batch_size=2)
    cache = capture(lm, ids, [act_name("resid_post", 0), act_name("resid_post", 1)])
    for li, layer in enumerate([1, 0]):
        for m, (b, p) in enumerate(index):
            np.testing.assert_allclose(H[li, m], cache[act_name("resid_post", layer)][b, p].numpy(), rtol=1e-5,
                                       atol=1e-6)


def test_labelled_inputs_and_layers_are_checked(lm):
    with pytest.raises(ValueError, match="positions and labels"):
        LabelledInputs(torch.zeros(3, 4, dtype=torch.long), np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="out of range"):
        TaskDecodability(layers=[N_LAYERS])(lm, LabelledInputs(torch.zeros(12, 3, dtype=torch.long),
                                                               np.zeros(12), np.arange(12) % 2))


# ---------------------------------------------------------------- text prompts and decoding


def test_encoded_prompts_find_every_arrow(bitwise_enc, tokenizer):
    for j, p in enumerate(bitwise_enc.prompts):
        ids = bitwise_enc.ids[j, : bitwise_enc.lengths[j]].tolist()
        assert tokenizer.decode(ids) == p.text
        assert bitwise_enc.arrows[j][-1] == bitwise_enc.lengths[j] - 1
        for a, t in zip(p.arrows, bitwise_enc.arrows[j]):
            assert tokenizer.decode([ids[t]]) == p.text[a + 1]  # character-level: the '>' of '->'
    assert (bitwise_enc.ids[:, : bitwise_enc.lengths.min()] != bitwise_enc.pad_id).all()
    sub = bitwise_enc.select(bitwise_enc.tasks == "bitwise-xor")
    assert len(sub) == 6 and set(sub.tasks) == {"bitwise-xor"}


def test_slow_tokenizers_are_refused():
    class Slow:
        is_fast = False
    with pytest.raises(ProbeInputError, match="fast tokenizer"):
        encode_prompts(Slow(), build_prompts(get_task("bitwise-or"), np.random.default_rng(0), 1))


def test_exact_match():
    assert exact_match(" 01101\n1101", "01101")
    assert not exact_match(" 0110", "01101")
    assert not exact_match("01101 1", "01101")


def test_greedy_decoding_matches_a_hand_loop(lm, bitwise_enc):
    texts = greedy_continuations(lm, bitwise_enc, max_new_tokens=3, batch_size=4)
    for j in (0, 7, 17):
        ids = bitwise_enc.ids[j, : bitwise_enc.lengths[j]]
        for _ in range(3):
            with torch.no_grad():
                nxt = lm(ids[None]).logits[0, -1].argmax()
            ids = torch.cat([ids, nxt[None]])
        new = bitwise_enc.tokenizer.decode(ids[bitwise_enc.lengths[j]:].tolist())
        assert texts[j] == new or ("\n" in new and texts[j] == new[: len(texts[j])])


# ---------------------------------------------------------------- patching


def _final_state_logits(lm, h: torch.Tensor) -> torch.Tensor:
    """What the LM head makes of a last-layer residual state: lm_head(ln_f(h))."""
    a = anatomy(lm)
    with torch.no_grad():
        return a.unembed(a.final_norm(h))


def test_replace_at_the_last_layer_decides_the_first_token(lm, bitwise_enc):
    d = D_MODEL
    vectors = np.random.default_rng(3).standard_normal((len(bitwise_enc), d)).astype(np.float32)
    texts = greedy_continuations(lm, bitwise_enc, 1, patch_edits(N_LAYERS - 1, vectors, "replace"), batch_size=5)
    expect = _final_state_logits(lm, torch.from_numpy(vectors)).argmax(-1)  # (n,)
    assert texts == [bitwise_enc.tokenizer.decode([t]) for t in expect.tolist()]


def test_add_at_the_last_layer_shifts_the_state(lm, bitwise_enc):
    v = 3 * np.random.default_rng(4).standard_normal(D_MODEL).astype(np.float32)
    vectors = np.repeat(v[None], len(bitwise_enc), axis=0)
    texts = greedy_continuations(lm, bitwise_enc, 1, patch_edits(N_LAYERS - 1, vectors, "add", scale=2.0),
                                 batch_size=4)
    name = act_name("resid_post", N_LAYERS - 1)
    cache = capture(lm, bitwise_enc.ids, [name])
    h = cache[name][torch.arange(len(bitwise_enc)), torch.as_tensor(bitwise_enc.query_positions)]  # (n, d)
    expect = _final_state_logits(lm, h + 2.0 * torch.from_numpy(v)).argmax(-1)
    assert texts == [bitwise_enc.tokenizer.decode([t]) for t in expect.tolist()]


def test_task_vectors_are_means_at_the_arrows(lm, bitwise_enc):
    vecs = task_vectors(lm, bitwise_enc, layers=[0, 1], batch_size=4)
    assert set(vecs) == {"bitwise-xor", "bitwise-and", "bitwise-null"} and vecs["bitwise-and"].shape == (2, D_MODEL)
    name = act_name("resid_post", 1)
    cache = capture(lm, bitwise_enc.ids, [name])
    states = [cache[name][j, int(p)] for j in range(len(bitwise_enc)) if bitwise_enc.tasks[j] == "bitwise-and"
              for p in bitwise_enc.arrows[j]]
    np.testing.assert_allclose(vecs["bitwise-and"][1], torch.stack(states).mean(0).numpy(), rtol=1e-5, atol=1e-6)
    last = task_vectors(lm, bitwise_enc, layers=[1], where="query")
    q = [cache[name][j, int(bitwise_enc.arrows[j][-1])] for j in range(len(bitwise_enc))
         if bitwise_enc.tasks[j] == "bitwise-and"]
    np.testing.assert_allclose(last["bitwise-and"][0], torch.stack(q).mean(0).numpy(), rtol=1e-5, atol=1e-6)


def test_patching_probe_rows(lm, bitwise_enc):
    vecs = {t: v[0] for t, v in task_vectors(lm, bitwise_enc, layers=[1]).items()}
    queries = bitwise_enc.select(bitwise_enc.tasks != "bitwise-null")
    res = TaskVectorPatching(layer=1, max_new_tokens=2)(lm, PatchingPrompts(queries, vecs, "bitwise-null"))
    metrics = {(r.metric, r.label) for r in res.rows}
    assert ("delta_task", "bitwise-xor") in metrics and ("accuracy_null", "bitwise-and") in metrics
    for t in ("bitwise-xor", "bitwise-and"):
        v = {r.metric: r.value for r in res.rows if r.label == t}
        assert v["delta_task"] == pytest.approx(v["accuracy_task"] - v["accuracy_clean"])
    ok, _ = correct(lm, queries, max_new_tokens=2)
    np.testing.assert_array_equal(res.arrays["correct_clean"], ok)
    with pytest.raises(ProbeInputError, match="no task vector"):
        TaskVectorPatching(layer=1)(lm, PatchingPrompts(queries, {"bitwise-xor": vecs["bitwise-xor"]},
                                                        "bitwise-null"))


# ---------------------------------------------------------------- the common probe checks


def _probe_cases(lm, enc):
    vecs = {t: v[0] for t, v in task_vectors(lm, enc, layers=[1]).items()}
    queries = enc.select(enc.tasks != "bitwise-null")
    return [(TaskDecodability(k=3), LabelledInputs(enc.ids, enc.query_positions, enc.tasks)),
            (TaskAccuracy(max_new_tokens=2), queries),
            (TaskVectorPatching(layer=1, max_new_tokens=2, mode="add"), PatchingPrompts(queries, vecs, "bitwise-null"))]


def test_probes_are_reproducible_fit_the_schema_and_leave_no_hook(lm, bitwise_enc):
    for probe, prompts in _probe_cases(lm, bitwise_enc):
        check_probe_contract(probe, lm, prompts)


def test_probe_parameters_are_validated():
    with pytest.raises(ValidationError, match="k"):
        TaskDecodability(k=0)
    with pytest.raises(ValidationError, match="mode"):
        TaskVectorPatching(layer=0, mode="swap")
    with pytest.raises(ValidationError, match="max_new_tokens"):
        TaskAccuracy(max_new_tokens=0)


# ---------------------------------------------------------------- study helpers


def test_marked_steps_and_r_squared():
    steps = np.array([0, 10, 20, 30, 40])
    loss = np.array([6.0, 3.9, 2.0, 0.5, 0.4])  # the first drop, to 4 = predicting 0, is no in-context gain
    assert marked_steps(steps, loss, [0.05, 0.5, 0.9], reference=4.0) == [20, 30]
    assert marked_steps(steps, np.array([6.0, 4.1, 4.0, 4.2, 4.05]), [0.5], reference=4.0) == []
    assert r_squared(np.array([0.0, 1, 2]), np.array([1.0, 3, 5])) == pytest.approx(1.0)
    assert np.isnan(r_squared(np.array([1.0, 1.0]), np.array([0.0, 1.0])))


def test_td_reads_the_last_x_and_the_panels_the_last_y():
    from iclab.config import load_config
    from iclab.models.vector import VectorModel

    cfg = load_config(TaskVectorsConfig, "task-vectors", "cpu", {
        "model.n_layers": 2, "model.d_model": 32, "model.n_heads": 2, "probe.k": 3})
    world = cfg.world
    model = VectorModel(cfg.model, world.dim, seed=0)
    prompts = world.prompts(np.random.default_rng(0), 24)
    saved = []
    rows = measure_synthetic(model, prompts, cfg, 1, saved.append)
    last_x, last_y = 2 * world.points - 2, 2 * world.points - 1  # x_K and y_K of the interleaved sequence
    assert {(r.pos, r.layer) for r in rows if r.metric == "td"} == {(p, l) for p in (last_x, last_y) for l in (0, 1)}
    inputs = {"xs": torch.from_numpy(prompts.xs), "ys": torch.from_numpy(prompts.ys)}
    index = np.stack([np.arange(24), np.full(24, last_y)], axis=1)
    (H,) = saved
    np.testing.assert_allclose(H, gather_hidden(model, inputs, index, [0, 1]), rtol=1e-5, atol=1e-6)

    same = cfg.model_copy(update={"probe": cfg.probe.model_copy(update={"td_position": "last_y"})})
    assert {r.pos for r in measure_synthetic(model, prompts, same, 1) if r.metric == "td"} == {last_y}


def test_lora_targets_are_the_linear_maps_of_the_chosen_layers(lm):
    assert tuned_layers(12, 10, "first") == [0, 1, 2, 3, 4, 5] and tuned_layers(12, 3, "last") == [9, 10, 11]
    names, conv = linear_targets(lm, [1])
    assert conv and names == ["transformer.h.1.attn.c_attn", "transformer.h.1.attn.c_proj",
                              "transformer.h.1.mlp.c_fc", "transformer.h.1.mlp.c_proj"]


def _answer_loss(model, enc) -> float:
    """Mean cross-entropy on the answer tokens, one prompt at a time (no padding)."""
    seqs, starts = answer_batches(enc)
    losses = []
    with torch.no_grad():
        for seq, start in zip(seqs, starts):
            ids = torch.tensor([seq])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
            losses += [-logp[i - 1, seq[i]].item() for i in range(start, len(seq))]
    return float(np.mean(losses))


@pytest.mark.parametrize("method", ["full", "lora"])
def test_finetuning_changes_only_the_chosen_layer_and_lowers_the_answer_loss(lm, bitwise_enc, method):
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    cfg = FinetuneSettings(enabled=True, method=method, n_layers=1, steps=30, batch_size=6, lr=3e-3, dropout=0.0)
    tuned = finetune_layers(lm, bitwise_enc, [1], cfg, seed=0)
    assert all(torch.equal(v, before[k]) for k, v in lm.state_dict().items())  # the model itself is untouched
    after = tuned.state_dict()
    assert set(after) == set(before)  # LoRA merged away: the same HF model, the same names
    changed = {k for k in before if not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith("transformer.h.1.") for k in changed)
    if method == "full":  # every parameter of layer 1 is trained, norms and biases too
        assert {k for k in before if k.startswith("transformer.h.1.") and not k.endswith(".attn.bias")} <= changed
        assert not any(p.requires_grad for p in tuned.parameters())
    assert all(v.dtype == before[k].dtype for k, v in after.items())
    assert _answer_loss(tuned, bitwise_enc) < _answer_loss(lm, bitwise_enc) - 0.1
    again = finetune_layers(lm, bitwise_enc, [1], cfg, seed=0)  # same seed, same weights
    assert all(torch.equal(v, after[k]) for k, v in again.state_dict().items())


def test_finetune_method_is_validated():
    with pytest.raises(ConfigError, match="finetune.method"):
        iclab.run("task-vectors", preset="cpu", overrides={"finetune.method": "qlora"})


# ---------------------------------------------------------------- the study, end to end

SYNTHETIC = {"train.steps": 20, "train.eval_every": 10, "train.ckpt_every": 10, "train.batch_size": 16,
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


def test_natural_part_end_to_end(saved_lm, tmp_path):
    run = iclab.run("task-vectors", preset="cpu", overrides=NATURAL, model=str(saved_lm), out=tmp_path)
    rows = run.load_rows()
    td = {(r.label, r.pos) for r in rows if r.metric == "td"}
    assert td == {(f, s) for f in ("bitwise", "pos") for s in (0, 1)}
    acc = {r.label for r in rows if r.probe == "accuracy" and r.metric == "accuracy"}
    assert acc == {n for n in task_names() if not n.endswith("-null")}
    assert {r.label for r in rows if r.metric == "r2"} == {"bitwise", "pos"}
    assert {r.label for r in rows if r.probe == "prompting"} == acc
    patch_rows = [r for r in rows if r.probe == "patching" and r.metric == "delta_task"]
    assert len(patch_rows) == 3 * 2 * len(acc)  # seeds x layers x tasks
    assert {r.model for r in rows if r.probe == "finetune"} == {f"{saved_lm}+lora-first1", f"{saved_lm}+lora-last1"}
    assert "LoRA rank 16" in (run.path / "report.html").read_text()
    figures = {p.name for p in (run.path / "figures").iterdir()}
    assert {"td_bitwise.png", "td_pos.png", "td_vs_accuracy.png", "finetune_accuracy.png"} <= figures
    assert run.meta["status"] == "done"


def test_full_finetuning_through_the_study(saved_lm, tmp_path):
    overrides = {**NATURAL, "natural.shots": [1], "natural.prompting_control": False, "patching.enabled": False,
                 "finetune.method": "full"}
    run = iclab.run("task-vectors", preset="cpu", overrides=overrides, model=str(saved_lm), out=tmp_path)
    rows = run.load_rows()
    assert {r.model for r in rows if r.probe == "finetune"} == {f"{saved_lm}+full-first1", f"{saved_lm}+full-last1"}
    assert "Full tuning of every parameter of the chosen layers" in (run.path / "report.html").read_text()


def test_td_and_accuracy_over_checkpoints(saved_lm, tokenizer, tmp_path):
    second = tmp_path / "ckpt-b"
    spec = ModelSpec(family="gpt2", n_layers=N_LAYERS, d_model=D_MODEL, n_heads=4, max_len=512)
    build_model(spec, len(tokenizer), seed=1).save_pretrained(second)
    tokenizer.save_pretrained(second)
    ckpts = [str(saved_lm), str(second)]
    overrides = {**NATURAL, "natural.shots": [1], "natural.prompting_control": False, "patching.enabled": False,
                 "finetune.enabled": False, "natural.checkpoints": ckpts}
    run = iclab.run("task-vectors", preset="cpu", overrides=overrides, model=str(saved_lm), out=tmp_path / "runs")
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


def test_a_missing_checkpoint_is_refused_before_any_work(saved_lm, tmp_path):
    with pytest.raises(ConfigError, match="natural.checkpoints.*does not exist"):
        iclab.run("task-vectors", preset="cpu", overrides={**NATURAL, "natural.checkpoints": ["./nope"]},
                  model=str(saved_lm), out=tmp_path)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="probe.baselines"):
        iclab.run("task-vectors", preset="cpu", overrides={"probe.baselines": ["ols"]})
    with pytest.raises(ConfigError, match="max_len"):
        iclab.run("task-vectors", preset="cpu", overrides={"model.max_len": 16})


def test_a_model_without_tokenizer_is_refused(lm, tmp_path):
    lm.save_pretrained(tmp_path / "no-tok")
    with pytest.raises(ModelLoadError, match="no tokenizer"):
        iclab.run("task-vectors", preset="cpu", overrides=NATURAL, model=str(tmp_path / "no-tok"),
                  out=tmp_path / "runs")
