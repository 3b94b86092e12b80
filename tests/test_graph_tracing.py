"""Graph-tracing probe and study: exact accuracy on a scripted model, one pass = re-run per
context length, the pretrained path end to end on a tiny saved model and tokenizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from iclab.config import to_yaml, validate
from iclab.errors import ConfigError, ProbeInputError
from iclab.models.build import ModelSpec, build_model
from iclab.models.hooks import hook_count
from iclab.probes.graph_tracing import (GraphTracing, accuracy_window_start, log_context_lengths, prepend_token,
                                        transition_context)
from iclab.probes.result import ROW_COLUMNS
from iclab.runs.report import Report
from iclab.runs.run import Run
from iclab.studies.graph_tracing import GraphTracingConfig, conflict_energies, natural_ring_edges, run_study
from iclab.worlds.base import TokenBatch
from iclab.worlds.graph import DAYS, DEFAULT_WORDS, GraphWorld

TINY = LlamaConfig(vocab_size=24, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                   num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=False,
                   bos_token_id=None, eos_token_id=None, pad_token_id=None)


class ScriptedLlama(LlamaForCausalLM):
    """A tiny Llama whose logits are scripted: at a token labelling node v, logit ``peak`` on
    the label of node ``choice[v]`` and 0 elsewhere. The layers still run (and fire hooks)."""

    def set_script(self, labels: np.ndarray, choice: np.ndarray, peak: float):
        self.script = (torch.as_tensor(labels), torch.as_tensor(choice), peak)

    def forward(self, input_ids=None, **kwargs):
        out = super().forward(input_ids=input_ids, **kwargs)
        labels, choice, peak = self.script
        node_of = torch.full((self.config.vocab_size,), -1, dtype=torch.long)
        node_of[labels] = torch.arange(labels.numel())
        target = labels[choice[node_of[input_ids]]]  # (batch, pos)
        logits = torch.zeros(*input_ids.shape, self.config.vocab_size)
        logits.scatter_(-1, target[..., None], peak)
        out.logits = logits
        return out


def _walks(world: GraphWorld, n: int, seed: int = 0) -> TokenBatch:
    return world.prompts(np.random.default_rng(seed), n)


def test_scripted_model_gives_the_exact_accuracy():
    world = GraphWorld(walk_length=40, vocab=24, seed=3)
    A, n = world.adjacency, world.n_nodes
    # even nodes predict their first neighbour (correct), odd nodes predict themselves (wrong)
    choice = np.array([world.neighbors(v)[0] if v % 2 == 0 else v for v in range(n)])
    model = ScriptedLlama(TINY).eval()
    peak = 2.0
    model.set_script(world.node_tokens, choice, peak)
    walks = _walks(world, 6)
    contexts = [1, 5, 17, 40]
    res = GraphTracing(context_lengths=contexts, accuracy_window=0.5, batch_size=4)(model, walks, world.graph)
    nodes = walks.info["nodes"]
    good = A[nodes, choice[nodes]]  # (walk, pos)
    deg = A.sum(axis=1)[nodes]
    z = np.exp(peak) + n - 1
    mass = np.where(good, (np.exp(peak) + deg - 1) / z, deg / z)
    for c in contexts:
        lo = accuracy_window_start(c, 0.5)
        assert res.value("accuracy", pos=c) == pytest.approx(good[:, lo:c].mean(), abs=1e-12)
        assert res.value("neighbor_mass", pos=c) == pytest.approx(mass[:, lo:c].mean(), rel=1e-6)
        assert res.value("chance", pos=c) == pytest.approx((deg / n)[:, lo:c].mean())
    assert [accuracy_window_start(c, 0.5) for c in contexts] == [0, 2, 8, 20]
    assert hook_count(model) == 0
    # a model that steps back to the previous node, else repeats the current one:
    # accuracy 1 (but at position 0), no-backtrack accuracy 0

    def previous_node_forward(input_ids=None, **kwargs):
        out = LlamaForCausalLM.forward(model, input_ids=input_ids, **kwargs)
        prev = torch.cat([input_ids[:, :1], input_ids[:, :-1]], dim=1)
        logits = torch.zeros(*input_ids.shape, model.config.vocab_size).scatter_(-1, input_ids[..., None], 10.0)
        out.logits = logits.scatter_(-1, prev[..., None], 50.0)
        return out

    model.forward = previous_node_forward
    res = GraphTracing(context_lengths=[4, 40], accuracy_window=1.0)(model, walks, world.graph)
    assert res.value("accuracy", pos=40) == pytest.approx(39 / 40)  # position 0 predicts itself
    assert res.value("accuracy_no_backtrack", pos=40) == 0.0


def _rows_by_key(res):
    return {(r.metric, r.layer, r.pos): r.value for r in res.rows}


@pytest.mark.parametrize("pool", ["walk", "batch"])
@pytest.mark.parametrize("bos", [False, True])
def test_one_pass_equals_rerun_per_context_length(pool, bos):
    world = GraphWorld(walk_length=60, vocab=24, seed=2)
    model = LlamaForCausalLM(TINY).double().eval()
    walks = _walks(world, 5, seed=1)
    if bos:
        walks = prepend_token(walks, 23)
    contexts = [3, 9, 20, 41, 60]
    probe = GraphTracing(context_lengths=contexts, window=25, pool=pool, min_present=0.25, batch_size=2)
    one = _rows_by_key(probe(model, walks, world.graph))
    P = int(bos)
    for c in contexts:
        cut = TokenBatch(walks.tokens[:, : P + c], None, {"nodes": walks.info["nodes"][:, : P + c],
                                                          "labels": walks.info["labels"]})
        again = _rows_by_key(probe.model_copy(update={"context_lengths": [c]})(model, cut, world.graph))
        mine = {k: v for k, v in one.items() if k[2] == c}
        assert mine.keys() == again.keys() and len(mine) >= 5
        for k, v in mine.items():
            assert v == pytest.approx(again[k], rel=1e-6, abs=1e-9), k
    assert any(m == "energy" for m, _, _ in one)


def test_probe_arrays_shapes_and_same_seed_same_rows():
    world = GraphWorld(walk_length=50, vocab=24, seed=1)
    model = LlamaForCausalLM(TINY).eval()
    walks = _walks(world, 4)
    probe = GraphTracing(n_contexts=6, window=30, keep_means=True)
    a, b = probe(model, walks, world.graph), probe(model, walks, world.graph)
    assert a.rows == b.rows  # same model and walks: the same rows (the common probe checks)
    for r in a.rows:
        assert isinstance(r.value, float) and np.isfinite(r.value) and set(vars(r)) == set(ROW_COLUMNS)
    for key, arr in a.arrays.items():
        np.testing.assert_array_equal(arr, b.arrays[key])
    C = len(a.arrays["context_lengths"])
    assert a.arrays["context_lengths"].tolist() == log_context_lengths(50, 6).tolist() == [1, 2, 5, 10, 23, 50]
    assert a.arrays["energy"].shape == (C, 2) and a.arrays["pca"].shape == (C, 2, 16, 4)
    assert a.arrays["means"].shape == (4, C, 2, 16, 16) and a.arrays["energy_by_walk"].shape == (4, C, 2)
    assert {r.probe for r in a.rows} == {"graph"}
    assert {r.layer for r in a.rows if r.metric == "energy_pca"} == {0, 1}


@pytest.mark.parametrize(("batch_size", "passes"), [(16, 1), (3, 2)])
def test_one_forward_pass_per_batch_and_only_the_requested_layers(batch_size, passes):
    world = GraphWorld(walk_length=50, vocab=24, seed=1)
    model = LlamaForCausalLM(TINY).eval()
    calls = []
    handle = model.register_forward_pre_hook(lambda module, args: calls.append(1))
    res = GraphTracing(n_contexts=8, layers=[1], site="attn_out", min_present=0.25, batch_size=batch_size)(
        model, _walks(world, 5), world.graph)
    handle.remove()
    assert len(calls) == passes
    assert {r.layer for r in res.rows} == {None, 1} and res.arrays["energy"].shape[1] == 1
    assert hook_count(model) == 0


def test_probe_validates_parameters_and_inputs():
    with pytest.raises(ValidationError):
        GraphTracing(accuracy_window=0)
    with pytest.raises(ValidationError):
        GraphTracing(n_components=3, pca_dims=2)
    with pytest.raises(ValidationError):
        GraphTracing(site="pattern")
    with pytest.raises(ValidationError):
        GraphTracing(unknown=1)
    world = GraphWorld(walk_length=20, vocab=24)
    model = LlamaForCausalLM(TINY).eval()
    walks = _walks(world, 2)
    with pytest.raises(ProbeInputError, match="context_lengths up to 30"):
        GraphTracing(context_lengths=[30])(model, walks, world.graph)
    with pytest.raises(ProbeInputError, match="layers"):
        GraphTracing(layers=[5])(model, walks, world.graph)
    with pytest.raises(ProbeInputError, match="labels"):
        GraphTracing()(model, walks, world.graph, labels=np.zeros(16, dtype=int))
    with pytest.raises(ProbeInputError, match="info"):
        GraphTracing()(model, walks.tokens, world.graph)
    assert hook_count(model) == 0


def test_transition_context():
    c = np.array([1, 2, 4, 8, 16, 32])
    assert transition_context(c, np.array([0.1, 0.1, 0.2, 0.6, 0.9, 0.95])) == 8
    assert transition_context(c, np.array([0.5, 0.5, 0.55, 0.6, 0.6, 0.6])) is None


def test_natural_ring_edges_are_the_usual_order():
    w = GraphWorld(kind="ring", semantic_conflict="days", seed=4)
    natural = natural_ring_edges(w.word_index)
    assert len(natural) == 7
    words = w.node_words
    pairs = {frozenset((words[i], words[j])) for i, j in natural}
    assert pairs == {frozenset((DAYS[k], DAYS[(k + 1) % 7])) for k in range(7)}
    assert not {frozenset(e) for e in w.edges.tolist()} & {frozenset(e) for e in natural.tolist()}


def test_conflict_energies_find_each_ring_in_its_components():
    w = GraphWorld(kind="ring", semantic_conflict="days", seed=4)
    n = w.n_nodes
    angle_usual = 2 * np.pi * w.word_index / n  # position in the usual order
    angle_ring = 2 * np.pi * np.arange(n) / n  # position on the in-context ring
    X = np.zeros((n, 10))
    X[:, 0], X[:, 1] = 3 * np.cos(angle_usual), 3 * np.sin(angle_usual)  # large: the top components
    X[:, 2], X[:, 3] = np.cos(angle_ring), np.sin(angle_ring)
    means = np.stack([X, X + 0.01])[:, None]  # (n_walks=2, C=1, n_nodes, d)
    e = conflict_energies(means, w.edges, natural_ring_edges(w.word_index))
    # a circle is the lowest-energy layout of a 7-ring: lambda_2 (n - 1) / (2 |E|) = 0.32; the two
    # circles are not orthogonal over the nodes, so PC3-4 hold the in-context one only in part
    assert e["energy_pc12_pretrained"][0] == pytest.approx(0.3238, abs=1e-3)
    assert e["energy_pc34_context"][0] < 0.5
    assert e["energy_pc12_context"][0] > 1 and e["energy_pc34_pretrained"][0] > 1


def _tiny_config(**changes) -> GraphTracingConfig:
    data = {"graph": {"walk_length": 32, "vocab": 24, "seed": 1},
            "pretrain": {"vocab": 24, "seq_len": 32, "max_nodes": 16, "n_graphs": 16},
            "model": {"n_layers": 2, "d_model": 16, "n_heads": 2, "max_len": 64},
            "train": {"steps": 4, "batch_size": 4, "warmup": 1, "eval_every": 2, "ckpt_every": 4},
            "probe": {"n_walks": 4, "n_contexts": 5, "window": 20, "min_present": 0.25, "train_walks": 2,
                      "batch_size": 4},
            "pretrained": {"walk_length": 40, "n_walks": 3, "batch_size": 2, "conflict": ["days"]}}
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value}
    return validate(GraphTracingConfig, data)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="graph.vocab"):
        _tiny_config(graph={"vocab": 30})
    with pytest.raises(ConfigError, match="probe.colour"):
        _tiny_config(probe={"colour": 1})
    with pytest.raises(ConfigError, match="conflict"):
        _tiny_config(pretrained={"conflict": ["weekdays"]})


def test_built_in_path_end_to_end(tmp_path):
    cfg = _tiny_config()
    run = Run.create(tmp_path, "graph-tracing", to_yaml(cfg), {"preset": "test"})
    report = run_study(cfg, run, None)
    report.save(run.path)
    rows = run.load_rows()
    assert {r.step for r in rows if r.label == "training"} == {0, 2, 4}
    final = [r for r in rows if r.label == "grid"]
    assert {"accuracy", "accuracy_no_backtrack", "energy", "energy_pca", "procrustes_r2"} <= {r.metric for r in final}
    assert (run.path / "models" / "model" / "config.json").is_file()
    assert len(list((run.path / "figures").glob("*.png"))) == 4
    assert "data:image/png;base64" in (run.path / "report.html").read_text()


def _save_tiny_word_model(path) -> None:
    words = ["<unk>", "<s>", *DEFAULT_WORDS, *DAYS]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", unk_token="<unk>")
    spec = ModelSpec(n_layers=2, d_model=16, n_heads=2, max_len=128)
    build_model(spec, len(words), seed=0).save_pretrained(path)
    tokenizer.save_pretrained(path)


def test_pretrained_path_end_to_end(tmp_path):
    path = tmp_path / "tiny-word-llama"
    _save_tiny_word_model(path)
    cfg = _tiny_config()
    run = Run.create(tmp_path / "runs", "graph-tracing", to_yaml(cfg), {"preset": "test"})
    report = run_study(cfg, run, str(path))
    report.save(run.path)
    rows = run.load_rows()
    grid = [r for r in rows if r.label == "grid"]
    days = [r for r in rows if r.label == "days"]
    assert max(r.pos for r in grid) == 40 and {r.layer for r in grid if r.metric == "energy"} == {0, 1}
    assert {"energy_pc12_context", "energy_pc34_context", "energy_pc12_pretrained",
            "energy_pc34_pretrained"} <= {r.metric for r in days}
    assert all(r.model == str(path) for r in rows)
    saved = Report.load(run.path)
    assert [s.heading for s in saved.sections][-2:] == ["Semantic conflict: days", "Semantic conflict: energies"]
    assert (run.path / "figures" / "conflict_days.png").is_file()
    assert json.loads((run.path / "report.json").read_text())["title"].endswith(str(path))
