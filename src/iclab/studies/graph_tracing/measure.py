"""What the graph-tracing study measures: a model pretrained here, or a pretrained LM, tracing a
new labelled graph in context; with a pretrained LM also the semantic-conflict rings."""

from __future__ import annotations

import numpy as np

from iclab.metrics.graph import conflict_energies, natural_ring_edges
from iclab.models.build import build_model, n_params
from iclab.models.load import context_limits, load_model, save_trained
from iclab.probes.graph_tracing import GraphWalks, log_context_lengths, pick_layer, prepend_token
from iclab.errors import ConfigError
from iclab.rows import Row, Rows
from iclab.runs.run import Run
from iclab.studies.graph_tracing.config import GraphTracingConfig, PretrainedSettings
from iclab.train.loop import train
from iclab.worlds.base import TokenBatch
from iclab.worlds.graph import GraphWorld, resolve_word_labels


def model_label(cfg: GraphTracingConfig) -> str:
    return f"L{cfg.model.n_layers}-d{cfg.model.d_model}"


def describe(rows: Rows) -> str:
    """What a probe step found: rule following on the new graph at the longest context traced."""
    acc = rows.where(metric="accuracy")
    c = max(acc.unique("pos"))
    return (f"accuracy at context {c} {acc.value(pos=c):.2f}, stepping back excluded "
            f"{rows.where(metric='accuracy_no_backtrack').value(pos=c):.2f}")


def measure(cfg: GraphTracingConfig, run: Run, model_name: str | None = None) -> None:
    """Pretrain on random graph walks, then trace the new graph (or trace it in ``model_name``)."""
    if model_name:
        return measure_pretrained(cfg, run, model_name)
    world = cfg.graph
    walks = GraphWalks(world.prompts(np.random.default_rng([cfg.seed, 1]), cfg.probe.n_walks), world.graph)
    model = build_model(cfg.model, cfg.pretrain.vocab_size, seed=cfg.seed)
    label = model_label(cfg)

    train_probe = None
    if cfg.probe.train_walks:
        few = walks.head(cfg.probe.train_walks)
        lengths = log_context_lengths(world.walk_length, 4, min(4, world.walk_length))
        probe_during = cfg.probe.probe(context_lengths=lengths.tolist())

        def train_probe(m, step):
            return probe_during(m, few).tagged(step=step, model=label, label="training").rows

    result = train(model, cfg.pretrain, cfg.train, data_seed=cfg.seed, ckpt_dir=run.ckpt_dir("model"),
                   probe=train_probe, label=label, describe=describe, log=cfg.log, run_dir=run.path)
    save_trained(model, run.path / "models" / "model", cfg.pretrain.seq_len)
    res = cfg.probe.probe()(model, walks)
    run.save_arrays("trace-trained", **res.arrays, n_params=n_params(model))
    run.save_rows(result.rows + res.tagged(step=result.step, model=label, label=world.kind).rows)


def word_walks(world: GraphWorld, tokenizer, settings: PretrainedSettings, rng: np.random.Generator
               ) -> tuple[TokenBatch, list[str], list[str]]:
    """Walks of ``world`` written as its words in ``tokenizer``'s ids (BOS first if asked).

    Returns the batch, the node words, and the resolver's warnings (multi-token words).
    """
    def encode(s: str) -> list[int]:
        return tokenizer.encode(s, add_special_tokens=False)

    resolved = resolve_word_labels(world.node_words, encode, settings.prefix)
    nodes = world.walk(rng, settings.n_walks, settings.walk_length)  # (n_walks, walk_length)
    batch = world.batch(nodes, resolved.token_ids)
    bos = getattr(tokenizer, "bos_token_id", None)
    if settings.bos and bos is not None:
        batch = prepend_token(batch, int(bos))
    return batch, world.node_words, resolved.warnings


def word_world(cfg: GraphTracingConfig) -> GraphWorld:
    """The traced graph, with the walk length of the pretrained path."""
    return GraphWorld(**{**cfg.graph.model_dump(), "walk_length": cfg.pretrained.walk_length})


def conflict_world(cfg: GraphTracingConfig, kind: str) -> GraphWorld:
    return GraphWorld(kind="ring", semantic_conflict=kind, seed=cfg.graph.seed, walk_length=cfg.pretrained.walk_length)


def measure_pretrained(cfg: GraphTracingConfig, run: Run, model_name: str) -> None:
    """Trace a word-labelled graph, and the semantic-conflict rings, in a pretrained LM."""
    model, tokenizer = load_model(model_name, tokenizer="required", settings=cfg.model)
    settings = cfg.pretrained
    _, maximum = context_limits(model)
    needed = settings.walk_length + settings.bos
    if maximum is not None and needed > maximum:
        raise ConfigError(f"pretrained.walk_length = {settings.walk_length}: walks of {needed} tokens are longer "
                          f"than the model's {maximum} positions; set pretrained.walk_length <= {maximum - 1}")
    world = word_world(cfg)
    batch, _, notes = word_walks(world, tokenizer, settings, np.random.default_rng([cfg.seed, 1]))
    res = cfg.probe.probe(batch_size=settings.batch_size)(model, GraphWalks(batch, world.graph))
    run.save_arrays("trace-words", **res.arrays, notes=np.array(notes, dtype=str),
                    bos=batch.tokens.shape[1] > settings.walk_length)
    rows = res.tagged(model=model_name, label=world.kind).rows
    layer = int(res.arrays["layers"][pick_layer(res.arrays, settings.figure_layer)])

    for kind in settings.conflict:
        cworld = conflict_world(cfg, kind)
        cbatch, _, cnotes = word_walks(cworld, tokenizer, settings, np.random.default_rng([cfg.seed, 2]))
        cres = cfg.probe.probe(batch_size=settings.batch_size, layers=[layer], keep_means=True)(
            model, GraphWalks(cbatch, cworld.graph))
        rows += cres.tagged(model=model_name, label=kind).rows
        contexts = cres.arrays["context_lengths"]
        means = cres.arrays["means"][:, :, 0]  # (n_walks or 1, C, n_nodes, d_model)
        ce = conflict_energies(means, cworld.edges, natural_ring_edges(cworld.word_index))
        for metric, values in ce.items():
            rows += [Row("graph", metric, float(v), layer=layer, pos=int(c), model=model_name, label=kind)
                     for c, v in zip(contexts, values) if np.isfinite(v)]
        run.save_arrays(f"conflict-{kind}", **ce, context_lengths=contexts, accuracy=cres.arrays["accuracy"],
                        means_walk0=means[0], notes=np.array(cnotes, dtype=str))
    run.save_rows(Rows(rows))
