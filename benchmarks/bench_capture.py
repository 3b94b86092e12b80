"""Activation capture: iclab against TransformerLens and nnsight on the same weights.

Two models are built from configs (random weights; no download): a GPT-2 (learned
positions, LayerNorm, GELU) and a Llama (rotary, RMSNorm, gated MLP, grouped KV heads).
Each is run in four ways on the same token ids:

- **iclab**: ``iclab.models.capture.capture`` on the HF model as built (SDPA attention;
  patterns computed from the captured queries and keys of the requested layers);
- **iclab, eager**: the same with the model switched to eager attention, as iclab captured
  patterns before (every layer computes its weights);
- **TransformerLens**: a ``HookedTransformer`` with the HF weights converted by its own
  ``convert_gpt2_weights`` / ``convert_llama_weights`` (no folding, no centring), and
  ``run_with_cache(names_filter=...)``;
- **nnsight**: ``NNsight(model).trace`` saving the block outputs; patterns through HF's
  ``output_attentions`` on eager attention (SDPA returns none), the way nnsight reads them.

Cases: a bare forward, every layer's ``resid_post``, every layer's attention pattern, and
one layer's pattern (the middle one). Before timing, the script checks that the contenders
give the same logits, residual stream and patterns (largest differences printed).

Timing: one thread; contenders alternate within each repeat (the machine is shared, so
each repeat sees about the same load), the median of repeats is reported, and the ratio
column is the median of per-repeat ratios **this / iclab** (> 1: iclab is faster). CPU
seconds (``time.process_time``) are reported beside wall-clock.

Run (needs ``pip install -e '.[capture-bench]'``: TransformerLens < 4, nnsight)::

    OMP_NUM_THREADS=1 python benchmarks/bench_capture.py [--repeats 5] [--batch 4] [--seq 256]

``--contenders iclab`` (no extra needed) times iclab alone, cheap enough for many repeats of
its cost against a bare forward.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import transformers as T

from iclab.models.capture import capture
from iclab.models.names import act_name

MODELS = {
    "gpt2": lambda: T.GPT2Config(vocab_size=8192, n_embd=512, n_layer=6, n_head=8, n_positions=1024,
                                 resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0),
    "llama": lambda: T.LlamaConfig(vocab_size=8192, hidden_size=512, intermediate_size=1376, num_hidden_layers=6,
                                   num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=1024),
}


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = T.AutoModelForCausalLM.from_config(MODELS[name](), attn_implementation="sdpa").eval()
    return model


def to_lens(model, name: str):
    """A HookedTransformer with ``model``'s weights (TransformerLens's own conversion)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.pretrained import weight_conversions as wc

    c = model.config
    if name == "gpt2":
        cfg = HookedTransformerConfig(d_model=c.n_embd, d_head=c.n_embd // c.n_head, n_layers=c.n_layer,
                                      n_ctx=c.n_positions, n_heads=c.n_head, d_mlp=4 * c.n_embd, d_vocab=c.vocab_size,
                                      act_fn="gelu_new", normalization_type="LN", eps=c.layer_norm_epsilon,
                                      original_architecture="GPT2LMHeadModel", default_prepend_bos=False)
        state = wc.convert_gpt2_weights(model, cfg)
    else:
        cfg = HookedTransformerConfig(d_model=c.hidden_size, d_head=c.hidden_size // c.num_attention_heads,
                                      n_layers=c.num_hidden_layers, n_ctx=c.max_position_embeddings,
                                      n_heads=c.num_attention_heads, n_key_value_heads=c.num_key_value_heads,
                                      d_mlp=c.intermediate_size, d_vocab=c.vocab_size, act_fn="silu", gated_mlp=True,
                                      normalization_type="RMS", final_rms=True, eps=c.rms_norm_eps,
                                      positional_embedding_type="rotary", rotary_dim=c.hidden_size // c.num_attention_heads,
                                      rotary_base=c.rope_parameters["rope_theta"], rotary_adjacent_pairs=False,
                                      original_architecture="LlamaForCausalLM", default_prepend_bos=False)
        state = wc.convert_llama_weights(model, cfg)
    lens = HookedTransformer(cfg)
    lens.load_state_dict(state, strict=False)
    return lens.eval()


def layers_of(model, name: str):
    return model.transformer.h if name == "gpt2" else model.model.layers


# ---------------------------------------------------------------- the contenders, per case


def iclab_run(model, ids, case: str, n: int, eager: bool = False):
    names = {"forward": [], "resid": [act_name("resid_post", l) for l in range(n)],
             "patterns": [act_name("pattern", l) for l in range(n)], "one_pattern": [act_name("pattern", n // 2)]}[case]
    before = model.config._attn_implementation
    if eager:
        model.set_attn_implementation("eager")
    try:
        if not names:
            with torch.no_grad():
                return {"logits": model(input_ids=ids).logits}
        c = capture(model, ids, names)
        return {"logits": c.logits, **{k: c[k] for k in names}}
    finally:
        model.set_attn_implementation(before)


def lens_run(lens, ids, case: str, n: int):
    names = {"resid": [f"blocks.{l}.hook_resid_post" for l in range(n)],
             "patterns": [f"blocks.{l}.attn.hook_pattern" for l in range(n)],
             "one_pattern": [f"blocks.{n // 2}.attn.hook_pattern"]}.get(case)
    with torch.no_grad():
        if names is None:
            return {"logits": lens(ids)}
        logits, cache = lens.run_with_cache(ids, names_filter=lambda x: x in names)
    return {"logits": logits, **{k: cache[k] for k in names}}


def nnsight_run(wrapped, model, name: str, ids, case: str, n: int, tuple_out: bool):
    layers = layers_of(wrapped, name)
    saved = {}  # filled inside the trace (nnsight runs its body apart and returns what is saved)
    if case in ("patterns", "one_pattern"):
        chosen = list(range(n)) if case == "patterns" else [n // 2]
        model.set_attn_implementation("eager")
        try:
            with torch.no_grad(), wrapped.trace(input_ids=ids, output_attentions=True):
                for l in chosen:
                    attn = layers[l].attn if name == "gpt2" else layers[l].self_attn
                    saved[act_name("pattern", l)] = attn.output[1].save()
                saved["logits"] = wrapped.output.logits.save()
        finally:
            model.set_attn_implementation("sdpa")
        return saved
    with torch.no_grad(), wrapped.trace(input_ids=ids):
        if case == "resid":
            for l in range(n):
                out = layers[l].output
                saved[act_name("resid_post", l)] = (out[0] if tuple_out else out).save()
        saved["logits"] = wrapped.output.logits.save()
    return saved


# ---------------------------------------------------------------- checks and timing


def max_diff(a: dict, b: dict) -> float:
    """Largest difference over what both captured (iclab's names are TransformerLens's)."""
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default="gpt2,llama")
    ap.add_argument("--contenders", default="iclab,iclab_eager,TransformerLens,nnsight",
                    help="comma list of iclab, iclab_eager, TransformerLens, nnsight (iclab is always run: "
                         "the ratios are to it); without the last two the capture-bench extra is not needed")
    ap.add_argument("--out", type=Path, default=Path("bench_out/capture.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from importlib.metadata import version

    chosen = {c.strip().replace("_", ", ") for c in args.contenders.split(",")} | {"iclab"}
    cases = ["forward", "resid", "patterns", "one_pattern"]
    report = {"batch": args.batch, "seq": args.seq, "threads": args.threads, "torch": torch.__version__,
              "transformers": T.__version__, "results": []}
    if "TransformerLens" in chosen:
        report["transformer_lens"] = version("transformer-lens")
    if "nnsight" in chosen:
        from nnsight import NNsight

        report["nnsight"] = version("nnsight")
    for name in args.models.split(","):
        model = build(name)
        n = model.config.num_hidden_layers
        lens = to_lens(model, name) if "TransformerLens" in chosen else None
        wrapped = NNsight(model) if "nnsight" in chosen else None
        ids = torch.randint(0, model.config.vocab_size, (args.batch, args.seq), generator=torch.Generator().manual_seed(1))
        tuple_out = []
        h = layers_of(model, name)[0].register_forward_hook(lambda m, a, o: tuple_out.append(isinstance(o, tuple)))
        with torch.no_grad():
            model(input_ids=ids[:1, :8])
        h.remove()
        contenders = {
            "iclab": lambda case: iclab_run(model, ids, case, n),
            "iclab, eager": lambda case: iclab_run(model, ids, case, n, eager=True),
            "TransformerLens": lambda case: lens_run(lens, ids, case, n),
            "nnsight": lambda case: nnsight_run(wrapped, model, name, ids, case, n, tuple_out[0]),
        }
        contenders = {who: fn for who, fn in contenders.items() if who in chosen}
        # same numbers first
        for case in cases[1:3]:
            ref = contenders["iclab"](case)
            for who in list(contenders)[1:]:
                got = contenders[who](case)
                print(f"{name} {case:<12} {who:<16} max |diff| vs iclab: {max_diff(ref, got):.2e}")
        times = {(c, w): [] for c in cases for w in contenders}
        cpu = {(c, w): [] for c in cases for w in contenders}
        for _ in range(args.repeats + 1):  # the first round warms up and is dropped
            for case in cases:
                for who, fn in contenders.items():
                    t0, c0 = time.perf_counter(), time.process_time()
                    fn(case)
                    times[case, who].append(time.perf_counter() - t0)
                    cpu[case, who].append(time.process_time() - c0)
        print(f"\n{name}: batch {args.batch} x seq {args.seq}, {n} layers, {args.repeats} repeats, "
              f"{args.threads} thread(s)")
        print(f"{'case':<12} {'contender':<16} {'median s':>9} {'CPU s':>7} {'this / iclab':>13} {'CPU this / iclab':>17}")
        for case in cases:
            base, base_cpu = times[case, "iclab"][1:], cpu[case, "iclab"][1:]
            for who in contenders:
                t, c = times[case, who][1:], cpu[case, who][1:]
                ratio = statistics.median(x / y for x, y in zip(t, base))
                cpu_ratio = statistics.median(x / y for x, y in zip(c, base_cpu))
                print(f"{case:<12} {who:<16} {statistics.median(t):>9.3f} {statistics.median(c):>7.3f} "
                      f"{ratio:>13.2f} {cpu_ratio:>17.2f}")
                report["results"].append({"model": name, "case": case, "contender": who, "seconds": t, "cpu": c,
                                          "ratio": ratio, "cpu_ratio": cpu_ratio})
        bare = cpu["forward", "iclab"][1:]
        print("iclab / bare forward, CPU (median of per-repeat ratios): " + ", ".join(
            f"{case} {statistics.median(x / y for x, y in zip(cpu[case, 'iclab'][1:], bare)):.3f}" for case in cases[1:]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
