"""Graph-tracing probe: exact accuracy on a scripted model, one pass = re-run per context length,
shapes, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from transformers import LlamaConfig, LlamaForCausalLM

from iclab.errors import InputError
from iclab.models.hooks import hook_count
from iclab.probes.graph_tracing import (GraphTracing, GraphWalks, accuracy_window_start, log_context_lengths,
                                        prepend_token, transition_context)
from iclab.rows import ROW_COLUMNS
from iclab.worlds.base import TokenBatch
from iclab.worlds.graph import GraphWorld

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
    res = GraphTracing(context_lengths=contexts, accuracy_window=0.5, batch_size=4)(model, GraphWalks(walks, world.graph))
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
    res = GraphTracing(context_lengths=[4, 40], accuracy_window=1.0)(model, GraphWalks(walks, world.graph))
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
    one = _rows_by_key(probe(model, GraphWalks(walks, world.graph)))
    P = int(bos)
    for c in contexts:
        cut = TokenBatch(walks.tokens[:, : P + c], None, {"nodes": walks.info["nodes"][:, : P + c],
                                                          "labels": walks.info["labels"]})
        again = _rows_by_key(probe.model_copy(update={"context_lengths": [c]})(model, GraphWalks(cut, world.graph)))
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
    a, b = probe(model, GraphWalks(walks, world.graph)), probe(model, GraphWalks(walks, world.graph))
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
        model, GraphWalks(_walks(world, 5), world.graph))
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
    with pytest.raises(InputError, match="context_lengths up to 30"):
        GraphTracing(context_lengths=[30])(model, GraphWalks(walks, world.graph))
    with pytest.raises(InputError, match="layers"):
        GraphTracing(layers=[5])(model, GraphWalks(walks, world.graph))
    with pytest.raises(InputError, match="labels"):
        GraphTracing()(model, GraphWalks(walks, world.graph, labels=np.zeros(16, dtype=int)))
    with pytest.raises(InputError, match="GraphWalks"):
        GraphTracing()(model, walks.tokens)
    with pytest.raises(InputError, match="info"):
        GraphTracing()(model, GraphWalks(TokenBatch(walks.tokens), world.graph))
    assert hook_count(model) == 0


def test_transition_context():
    c = np.array([1, 2, 4, 8, 16, 32])
    assert transition_context(c, np.array([0.1, 0.1, 0.2, 0.6, 0.9, 0.95])) == 8
    assert transition_context(c, np.array([0.5, 0.5, 0.55, 0.6, 0.6, 0.6])) is None
