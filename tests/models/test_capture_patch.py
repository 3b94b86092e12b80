"""Capture and patching by activation name, on every family's tiny model, and model loading.

Known answers come from outside iclab: HF's own ``hidden_states`` and eager ``attentions``,
the residual bookkeeping of a pre-norm block (``resid_mid = resid_pre + attn_out``), value
vectors recomputed from the HF projection modules, and weight edits on a copy of the model.
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, GPTNeoXConfig, GPTNeoXForCausalLM

from iclab.errors import ConfigError, ModelLoadError
from iclab.models.build import ModelSpec, build_model
from iclab.models.capture import Cache, capture
from iclab.models import hooks as hooks_module
from iclab.models.hooks import hook_count, hooks, model_names
from iclab.models.load import load_model
from iclab.models.names import READ_ONLY, act_name, all_names, parse_name
from iclab.models.patch import AblateHeads, Add, Replace, patch

ATOL = 1e-5


def logits_of(model, ids, **kw):
    with torch.no_grad():
        return model(input_ids=ids, **kw)


def attn_impls(tiny) -> set[str]:
    """The attention implementation the model and each attention module will use."""
    m = tiny.model
    return {m.config._attn_implementation} | {tiny.attn(m, l).config._attn_implementation
                                               for l in range(tiny.n_layers)}


# ---------------------------------------------------------------- loading


def test_loaded_model_is_the_saved_one(tiny_lm, token_ids):
    m = tiny_lm.model
    assert not m.training and next(m.parameters()).dtype == torch.float32
    assert m.config._attn_implementation == "sdpa"  # what the capture tests rely on
    torch.testing.assert_close(logits_of(m, token_ids).logits, logits_of(tiny_lm.built, token_ids).logits,
                               atol=ATOL, rtol=0)


def test_a_model_saved_without_a_tokenizer_loads_without_one(tiny_lm):
    """Nothing but config.json and weights was saved: load_model must return no tokenizer
    (None, "probes that need one say so"), not an empty one that turns text into []."""
    _, tokenizer = load_model(str(tiny_lm.path), device="cpu")
    assert tokenizer is None, f"got {type(tokenizer).__name__} with {len(tokenizer)} tokens"


def test_a_study_that_needs_a_tokenizer_refuses_a_model_without_one(tiny_lm):
    with pytest.raises(ModelLoadError, match="no tokenizer"):
        load_model(str(tiny_lm.path), device="cpu", tokenizer="required")


def test_load_missing_path(tmp_path):
    with pytest.raises(ModelLoadError) as e:
        load_model(str(tmp_path / "no-such-model"))
    msg = str(e.value)
    assert "no-such-model" in msg and "does not exist" in msg and "\n" not in msg


def test_load_directory_without_config(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError) as e:
        load_model(str(tmp_path))
    msg = str(e.value)
    assert "config.json" in msg and str(tmp_path) in msg and "\n" not in msg


def test_load_truncated_safetensors(tiny_lms, tmp_path):
    src = tiny_lms["llama"].path
    for f in src.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    weights = tmp_path / "model.safetensors"
    assert weights.exists()
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError) as e:
        load_model(str(tmp_path), tokenizer="none")
    msg = str(e.value)
    assert "could not be loaded" in msg and "\n" not in msg


def test_load_unknown_model_type(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        load_model(str(tmp_path), tokenizer="none")


# ---------------------------------------------------------------- capture: shapes and values


def test_capture_every_name_has_the_documented_shape(tiny_lm, token_ids, documented_names):
    kv_heads = 2 if tiny_lm.family == "qwen2" else tiny_lm.n_heads  # conftest: qwen2 has grouped-query attention
    d_mlp = 2 * tiny_lm.d_model if tiny_lm.family == "qwen2" else 4 * tiny_lm.d_model
    sizes = {"batch": token_ids.shape[0], "pos": token_ids.shape[1], "query": token_ids.shape[1],
             "key": token_ids.shape[1], "d_model": tiny_lm.d_model, "head": tiny_lm.n_heads,
             "d_head": tiny_lm.d_head, "kv_head": kv_heads, "d_mlp": d_mlp, "1": 1}
    names = model_names(tiny_lm.model)
    # every name of the vocabulary, less learned positions in the rotary families
    absent = set() if tiny_lm.family == "gpt2" else {"hook_pos_embed"}
    assert names == [n for n in all_names(tiny_lm.n_layers) if n not in absent]
    cache = capture(tiny_lm.model, token_ids, names)
    assert isinstance(cache, Cache) and set(cache) == set(names)
    for row in documented_names:
        for name in row.names(tiny_lm.n_layers):
            if name in absent:
                continue
            assert tuple(cache[name].shape) == tuple(sizes[a] for a in row.axes), name
            assert not cache[name].requires_grad
    assert cache.logits.shape == (*token_ids.shape, tiny_lm.vocab)


def test_residual_stream_matches_hf_hidden_states(tiny_lm, token_ids):
    m, L = tiny_lm.model, tiny_lm.n_layers
    hs = logits_of(m, token_ids, output_hidden_states=True).hidden_states
    assert len(hs) == L + 1
    cache = capture(m, token_ids, model_names(m))
    torch.testing.assert_close(cache[act_name("resid_pre", 0)], hs[0], atol=ATOL, rtol=0)
    for layer in range(L - 1):
        torch.testing.assert_close(cache[act_name("resid_post", layer)], hs[layer + 1], atol=ATOL, rtol=0)
    # HF's last hidden state is after the final norm; iclab's resid_post is before it
    torch.testing.assert_close(cache["ln_final.hook_normalized"], hs[-1], atol=ATOL, rtol=0)
    last = cache[act_name("resid_post", L - 1)]
    assert not torch.allclose(last, hs[-1], atol=1e-2)
    torch.testing.assert_close(tiny_lm.final_norm(m)(last), hs[-1], atol=ATOL, rtol=0)


def test_residual_bookkeeping(tiny_lm, token_ids):
    """Pre-norm blocks: resid_mid = resid_pre + attn_out, resid_post = resid_mid + mlp_out."""
    m, L = tiny_lm.model, tiny_lm.n_layers
    c = capture(m, token_ids, model_names(m))
    with torch.no_grad():
        torch.testing.assert_close(c["hook_embed"], tiny_lm.embed(m)(token_ids), atol=0, rtol=0)
        torch.testing.assert_close(c.logits, tiny_lm.lm_head(m)(c["ln_final.hook_normalized"]), atol=ATOL, rtol=0)
    for layer in range(L):
        get = lambda site: c[act_name(site, layer)]  # noqa: E731
        torch.testing.assert_close(get("resid_mid"), get("resid_pre") + get("attn_out"), atol=ATOL, rtol=0)
        torch.testing.assert_close(get("resid_post"), get("resid_mid") + get("mlp_out"), atol=ATOL, rtol=0)
        if layer + 1 < L:
            torch.testing.assert_close(c[act_name("resid_pre", layer + 1)], get("resid_post"), atol=0, rtol=0)
        assert get("attn_out").abs().max() > 1e-4 and get("mlp_out").abs().max() > 1e-4


def test_z_and_pattern_are_the_attention_maths(tiny_lm, token_ids):
    """z[b, i, h] = sum_k A[b, h, i, k] v[b, k, h], and o_proj(z) = attn_out (+ nothing else)."""
    m, L = tiny_lm.model, tiny_lm.n_layers
    c = capture(m, token_ids, model_names(m))
    with torch.no_grad():
        for layer in range(L):
            v = tiny_lm.values(m, layer, c[act_name("resid_pre", layer)])  # (batch, pos, head, d_head)
            pattern = c[act_name("pattern", layer)]  # (batch, head, query, key)
            z = c[act_name("z", layer)]
            torch.testing.assert_close(z, torch.einsum("bhik,bkhd->bihd", pattern, v), atol=ATOL, rtol=0)
            attn_out = tiny_lm.o_proj(m, layer)(z.flatten(-2))  # (batch, pos, d_model)
            torch.testing.assert_close(attn_out, c[act_name("attn_out", layer)], atol=ATOL, rtol=0)


def test_pattern_equals_hf_eager_attentions(tiny_lm, token_ids):
    ref = AutoModelForCausalLM.from_pretrained(tiny_lm.path, attn_implementation="eager").eval()
    want = logits_of(ref, token_ids, output_attentions=True).attentions
    c = capture(tiny_lm.model, token_ids, [act_name("pattern", l) for l in range(tiny_lm.n_layers)])
    for layer in range(tiny_lm.n_layers):
        torch.testing.assert_close(c[act_name("pattern", layer)], want[layer], atol=ATOL, rtol=0)


def test_pattern_is_causal_and_normalised_and_sdpa_is_restored(tiny_lm, token_ids):
    assert attn_impls(tiny_lm) == {"sdpa"}
    names = [act_name("pattern", l) for l in range(tiny_lm.n_layers)]
    c = capture(tiny_lm.model, token_ids, names)
    assert attn_impls(tiny_lm) == {"sdpa"}
    T = token_ids.shape[1]
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    for name in names:
        p = c[name]
        torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:-1]), atol=1e-6, rtol=0)
        assert (p[..., future] == 0).all()
        assert (p >= 0).all() and (p[..., ~future] > 0).all()  # softmax never gives an exact 0


def test_empty_pattern_capture_is_an_error(tiny_lm, token_ids, monkeypatch, hooks_on):
    """If nothing switched to iclab's eager attention, no pattern arrives: capture must say so."""
    monkeypatch.setattr(hooks_module, "_attention_implementation", lambda model, sites: contextlib.nullcontext())
    before = hooks_on(tiny_lm.model)
    with pytest.raises(RuntimeError, match="eager"):
        capture(tiny_lm.model, token_ids, [act_name("pattern", 0), act_name("resid_post", 0)])
    assert hooks_on(tiny_lm.model) == before
    assert attn_impls(tiny_lm) == {"sdpa"}


def test_capture_does_not_change_logits(tiny_lm, token_ids):
    m = tiny_lm.model
    bare = logits_of(m, token_ids).logits
    no_patterns = [n for n in model_names(m) if parse_name(n).site != "pattern"]
    c = capture(m, token_ids, no_patterns)
    torch.testing.assert_close(c.logits, bare, atol=0, rtol=0)
    # with patterns the pass runs on eager attention: the same numbers up to rounding
    c = capture(m, token_ids, model_names(m))
    torch.testing.assert_close(c.logits, bare, atol=ATOL, rtol=0)
    torch.testing.assert_close(logits_of(m, token_ids).logits, bare, atol=0, rtol=0)


def test_capture_with_an_edit_keeps_the_edited_activation(tiny_lm, token_ids):
    m = tiny_lm.model
    name, nxt = act_name("resid_post", 0), act_name("resid_pre", 1)
    clean = capture(m, token_ids, [name])
    v = torch.linspace(-1, 1, tiny_lm.d_model)
    c = capture(m, token_ids, [name, nxt], edits={name: Add(v, pos=2)})
    want = clean[name].clone()
    want[:, 2] += v
    torch.testing.assert_close(c[name], want, atol=0, rtol=0)
    torch.testing.assert_close(c[nxt], want, atol=0, rtol=0)
    torch.testing.assert_close(c.logits, patch(m, token_ids, {name: Add(v, pos=2)}), atol=0, rtol=0)


def test_inputs_may_be_numpy_arrays_lists_or_one_sequence(tiny_lm, token_ids):
    name = act_name("resid_post", 1)
    ref = capture(tiny_lm.model, token_ids, [name])
    for inputs in (token_ids.numpy(), token_ids.tolist(), token_ids.numpy().astype(np.int32)):
        got = capture(tiny_lm.model, inputs, [name])
        assert torch.equal(got[name], ref[name]) and torch.equal(got.logits, ref.logits)
    one = capture(tiny_lm.model, token_ids[0].tolist(), [name])  # (pos,): a batch of one
    torch.testing.assert_close(one[name], ref[name][:1])
    logits = patch(tiny_lm.model, token_ids.numpy(), {name: Replace(ref[name][:, -1], pos=token_ids.shape[1] - 1)})
    torch.testing.assert_close(logits, ref.logits)


@pytest.mark.parametrize("bad", ["a string", [[1, 2], [3]], [{"a": 1}]])
def test_inputs_that_are_not_token_ids_are_refused(tiny_lm, bad):
    with pytest.raises(TypeError, match="token ids"):
        capture(tiny_lm.model, bad, [act_name("resid_post", 0)])


def test_cache_names_what_was_captured(tiny_lm, token_ids):
    c = capture(tiny_lm.model, token_ids, ["hook_embed", act_name("z", 1)])
    with pytest.raises(KeyError, match="hook_embed.*blocks.1.attn.hook_z"):
        c[act_name("z", 0)]
    assert len(c) == 2 and "hook_embed" in repr(c)


# ---------------------------------------------------------------- hooks never outlive their block


def test_no_hooks_remain_after_capture_and_patch(tiny_lm, token_ids, hooks_on):
    m = tiny_lm.model
    before, before_iclab = hooks_on(m), hook_count(m)
    capture(m, token_ids, model_names(m))
    patch(m, token_ids, {act_name("resid_post", 1): Add(torch.ones(tiny_lm.d_model)),
                         act_name("z", 0): AblateHeads([1])})
    assert hooks_on(m) == before and hook_count(m) == before_iclab


def test_no_hooks_remain_when_the_block_raises(tiny_lm, hooks_on):
    m = tiny_lm.model
    before = hooks_on(m)
    names = model_names(m)
    with pytest.raises(ZeroDivisionError):
        with hooks(m, {n: (lambda a: None) for n in names}, read_only=set(names)):
            # one hook a name (two for GPT-2's position embedding, which also reads the batch size)
            assert hooks_on(m) == before + len(names) + ("hook_pos_embed" in names)
            1 / 0
    assert hooks_on(m) == before


def test_no_hooks_remain_when_the_forward_raises(tiny_lm, token_ids, hooks_on):
    m = tiny_lm.model
    before = hooks_on(m)

    def boom(act):
        raise FloatingPointError("edit failed")
    with pytest.raises(FloatingPointError, match="edit failed"):
        patch(m, token_ids, {act_name("resid_pre", 0): Add(torch.zeros(tiny_lm.d_model)),
                             act_name("mlp_out", 1): boom})
    assert hooks_on(m) == before
    bad_ids = token_ids.clone()
    bad_ids[0, 0] = tiny_lm.vocab + 100  # the embedding lookup fails inside the forward
    with pytest.raises((IndexError, RuntimeError)):
        capture(m, bad_ids, model_names(m))
    assert hooks_on(m) == before and attn_impls(tiny_lm) == {"sdpa"}


def test_no_hooks_remain_when_a_later_name_is_refused(tiny_lm, token_ids, hooks_on):
    m = tiny_lm.model
    before = hooks_on(m)
    with pytest.raises(ConfigError):
        capture(m, token_ids, [act_name("pattern", 0), act_name("resid_post", 0), "blocks.7.hook_resid_post"])
    with pytest.raises(ConfigError):
        patch(m, token_ids, {act_name("resid_post", 0): Add(torch.zeros(tiny_lm.d_model)),
                             act_name("resid_mid", 0): Add(torch.zeros(tiny_lm.d_model))})
    assert hooks_on(m) == before and attn_impls(tiny_lm) == {"sdpa"}


# ---------------------------------------------------------------- patching


def test_replace_last_resid_post_at_one_position_gives_the_clean_logits_there(tiny_lm, token_ids):
    m, name, p = tiny_lm.model, act_name("resid_post", tiny_lm.n_layers - 1), 6
    corrupt_ids = (token_ids + 7) % tiny_lm.vocab
    clean = capture(m, token_ids, [name])
    corrupt = logits_of(m, corrupt_ids).logits
    patched = patch(m, corrupt_ids, {name: Replace(clean[name][:, p], pos=p)})
    torch.testing.assert_close(patched[:, p], clean.logits[:, p], atol=ATOL, rtol=0)
    others = [i for i in range(token_ids.shape[1]) if i != p]
    torch.testing.assert_close(patched[:, others], corrupt[:, others], atol=0, rtol=0)
    assert not torch.allclose(corrupt[:, p], clean.logits[:, p], atol=1e-3)  # the patch did something


def test_replace_with_one_position_per_row(tiny_lm, token_ids):
    m, name = tiny_lm.model, act_name("resid_post", tiny_lm.n_layers - 1)
    corrupt_ids = (token_ids + 3) % tiny_lm.vocab
    clean = capture(m, token_ids, [name])
    pos = torch.tensor([1, 9, 4])
    rows = torch.arange(3)
    patched = patch(m, corrupt_ids, {name: Replace(clean[name][rows, pos], pos=pos)})
    corrupt = logits_of(m, corrupt_ids).logits
    for b, p in enumerate(pos.tolist()):
        torch.testing.assert_close(patched[b, p], clean.logits[b, p], atol=ATOL, rtol=0)
        others = [i for i in range(token_ids.shape[1]) if i != p]
        torch.testing.assert_close(patched[b, others], corrupt[b, others], atol=0, rtol=0)


@pytest.mark.parametrize("site", ["embed", "resid_pre"])
def test_replacing_the_whole_input_stream_gives_the_clean_run(tiny_lm, token_ids, site):
    m = tiny_lm.model
    name = act_name(site, 0) if site == "resid_pre" else act_name(site)
    corrupt_ids = (token_ids * 3 + 1) % tiny_lm.vocab
    clean = capture(m, token_ids, [name])
    patched = patch(m, corrupt_ids, {name: Replace(clean[name])})
    torch.testing.assert_close(patched, clean.logits, atol=ATOL, rtol=0)


def test_every_writable_name_can_be_patched_and_read_only_names_are_refused(tiny_lm, token_ids, hooks_on):
    m = tiny_lm.model
    bare = logits_of(m, token_ids).logits
    before = hooks_on(m)
    shapes = {n: a.shape for n, a in capture(m, token_ids, model_names(m)).items()}
    for name in model_names(m):
        site = parse_name(name).site
        if site in READ_ONLY:
            with pytest.raises(ConfigError, match="not patched") as e:
                patch(m, token_ids, {name: Add(torch.zeros(1))})
            assert name in str(e.value)
        else:
            width = shapes[name][-1]
            out = patch(m, token_ids, {name: Add(torch.zeros(width))})
            # a pattern edit recomputes pattern @ v on eager attention, a result edit sums the heads'
            # results: the same numbers up to rounding; every other unchanged edit changes nothing at all
            exact = site not in ("pattern", "result")
            torch.testing.assert_close(out, bare, atol=0 if exact else ATOL, rtol=0, msg=name)
            # an edit that does change the activation changes the logits: the edit is really applied
            # (not a constant vector: LayerNorm would remove it)
            edit = Add(torch.linspace(-1, 1, width), pos=3)
            if site in ("q", "k"):  # in these tiny models the values are nearly equal across positions (their
                # bias dominates), so a new pattern barely moves the logits: check the pattern moved instead
                pattern = act_name("pattern", parse_name(name).layer)
                edited = capture(m, token_ids, [pattern], edits={name: edit})[pattern]
                assert not torch.allclose(edited[:, :, 3], capture(m, token_ids, [pattern])[pattern][:, :, 3],
                                          atol=1e-3), name
                continue
            out = patch(m, token_ids, {name: edit})
            assert not torch.allclose(out[:, 3], bare[:, 3], atol=1e-4), name
    assert hooks_on(m) == before


def test_add_with_scale_equals_replace_with_the_sum(tiny_lm, token_ids):
    m, name = tiny_lm.model, act_name("resid_post", 0)
    v = torch.randn(tiny_lm.d_model, generator=torch.Generator().manual_seed(1))
    clean = capture(m, token_ids, [name])
    added = patch(m, token_ids, {name: Add(v, pos=[2, 5], scale=-2.5)})
    want = clean[name][:, [2, 5]] - 2.5 * v
    replaced = patch(m, token_ids, {name: Replace(want, pos=[2, 5])})
    torch.testing.assert_close(added, replaced, atol=ATOL, rtol=0)
    torch.testing.assert_close(added[:, :2], clean.logits[:, :2], atol=0, rtol=0)  # causal: earlier positions untouched


@pytest.mark.parametrize("layer", [0, 1])
def test_zero_ablating_every_head_leaves_only_the_output_bias(tiny_lm, token_ids, layer):
    """With z = 0 the attention output is W_O 0 + b_O = b_O (GPT-2 has a bias, llama and qwen2 do not)."""
    m = tiny_lm.model
    ablated = patch(m, token_ids, {act_name("z", layer): AblateHeads(list(range(tiny_lm.n_heads)))})
    bias = tiny_lm.o_bias(m, layer).expand(*token_ids.shape, -1)  # (batch, pos, d_model)
    via_attn_out = patch(m, token_ids, {act_name("attn_out", layer): Replace(bias)})
    torch.testing.assert_close(ablated, via_attn_out, atol=ATOL, rtol=0)
    assert not torch.allclose(ablated, logits_of(m, token_ids).logits, atol=1e-4)
    if tiny_lm.family == "gpt2":
        assert bias.abs().min() > 0  # the fixture perturbs biases, so forgetting b_O would show
    else:
        torch.testing.assert_close(via_attn_out, patch(m, token_ids, {act_name("attn_out", layer): Replace(
            torch.zeros(tiny_lm.d_model))}), atol=0, rtol=0)


@pytest.mark.parametrize("head", [0, 2])
def test_zero_ablating_one_head_equals_removing_its_output_weights(tiny_lm, token_ids, head):
    m, layer = tiny_lm.model, 1
    ablated = patch(m, token_ids, {act_name("z", layer): AblateHeads([head])})
    edited = copy.deepcopy(m)
    with torch.no_grad():
        tiny_lm.o_weight_cols(edited, layer, head).zero_()
    want = logits_of(edited, token_ids).logits
    torch.testing.assert_close(ablated, want, atol=ATOL, rtol=0)
    assert not torch.allclose(ablated, logits_of(m, token_ids).logits, atol=1e-5)


def test_mean_ablation_with_the_heads_own_z_changes_nothing(tiny_lm, token_ids):
    m, name = tiny_lm.model, act_name("z", 0)
    one = token_ids[:1]
    z = capture(m, one, [name])[name]  # (1, pos, head, d_head)
    bare = logits_of(m, one).logits
    out = patch(m, one, {name: AblateHeads([0, 3], mode="mean", mean=z.mean(0))})  # mean: (pos, head, d_head)
    torch.testing.assert_close(out, bare, atol=ATOL, rtol=0)
    # the mean of a batch of identical prompts is each prompt's own z
    twice = one.expand(2, -1)
    z2 = capture(m, twice, [name])[name]
    out = patch(m, twice, {name: AblateHeads([1], mode="mean", mean=z2.mean(0))})
    torch.testing.assert_close(out, bare.expand(2, -1, -1), atol=ATOL, rtol=0)
    # a different mean does change the output
    out = patch(m, one, {name: AblateHeads([0, 3], mode="mean", mean=z[0] + 1)})
    assert not torch.allclose(out, bare, atol=1e-4)


def test_ablate_heads_validates_its_parameters(tiny_lm, token_ids):
    with pytest.raises(ConfigError, match="'zero', 'mean'"):
        AblateHeads([0], mode="half")
    with pytest.raises(ConfigError, match="mean="):
        AblateHeads([0], mode="mean")
    with pytest.raises(ConfigError, match="hook_z"):
        patch(tiny_lm.model, token_ids, {act_name("resid_post", 0): AblateHeads([0])})


@pytest.mark.parametrize("name", ["blocks.2.hook_resid_post", "blocks.99.attn.hook_pattern", "blocks.5.attn.hook_z"])
def test_out_of_range_layer_names_the_range(tiny_lm, token_ids, name, hooks_on):
    before = hooks_on(tiny_lm.model)
    for call in (lambda: capture(tiny_lm.model, token_ids, [name]),
                 lambda: patch(tiny_lm.model, token_ids, {name: Add(torch.zeros(1))})):
        with pytest.raises(ConfigError) as e:
            call()
        msg = str(e.value)
        assert name in msg and "0..1" in msg, msg
    assert hooks_on(tiny_lm.model) == before


def test_a_patch_whose_site_never_runs_is_an_error(tiny_lm, token_ids):
    """With ``inputs_embeds`` the token embedding is never called, so an edit at ``hook_embed``
    cannot apply. capture() raises when a hook never fires; patch() must not return the
    unpatched logits as if the edit had been made."""
    m = tiny_lm.model
    with torch.no_grad():
        embeds = tiny_lm.embed(m)(token_ids)
    edit = Replace(torch.zeros(tiny_lm.d_model))
    with pytest.raises(RuntimeError, match="hook_embed"):
        patch(m, {"inputs_embeds": embeds}, {"hook_embed": edit})


# ---------------------------------------------------------------- families beyond the tiny three


def test_gpt_neox_models_can_be_captured(tmp_path, token_ids):
    """GPT-NeoX (Pythia) has a row in the family table; in transformers 5 its unembedding is
    ``lm_head`` (it was ``embed_out``)."""
    config = GPTNeoXConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, max_position_embeddings=64)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        GPTNeoXForCausalLM(config).save_pretrained(tmp_path)
    model, _ = load_model(str(tmp_path), tokenizer="none")
    names = model_names(model)  # parallel residual: no resid_mid, no ln2
    assert not any(parse_name(n).site in ("resid_mid", "ln2_scale", "pos_embed") for n in names)
    c = capture(model, token_ids, names)
    hs = logits_of(model, token_ids, output_hidden_states=True).hidden_states
    torch.testing.assert_close(c[act_name("resid_post", 0)], hs[1], atol=ATOL, rtol=0)
    torch.testing.assert_close(c["ln_final.hook_normalized"], hs[-1], atol=ATOL, rtol=0)
    with pytest.raises(ConfigError, match="parallel"):
        capture(model, token_ids, [act_name("resid_mid", 0)])


def test_attention_only_gpt2_is_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="attn_only"):
        ModelSpec(family="gpt2", attn_only=True)


@pytest.mark.parametrize("family", ["llama", "mistral"])
def test_attention_only_models_run_and_their_mlp_outputs_zero(family, token_ids):
    spec = ModelSpec(family=family, n_layers=2, d_model=32, n_heads=4, attn_only=True, max_len=64)
    model = build_model(spec, 50, seed=0).eval()
    c = capture(model, token_ids, [act_name("mlp_out", 0), act_name("mlp_out", 1), act_name("attn_out", 1)])
    assert c[act_name("mlp_out", 0)].abs().max() == 0 and c[act_name("mlp_out", 1)].abs().max() == 0
    assert c[act_name("attn_out", 1)].abs().max() > 0
    assert c.logits.shape == (*token_ids.shape, 50)


@pytest.mark.parametrize("family", ["llama", "mistral"])
def test_attention_only_mlp_stays_zero_after_training(family, token_ids):
    """build.py: an attention-only model's MLP 'outputs exactly zero'. It must stay so after a
    training step, or the model is no longer attention-only (GPT-2's MLP output projection
    keeps a trainable bias of width d_model)."""
    spec = ModelSpec(family=family, n_layers=1, d_model=32, n_heads=4, attn_only=True, max_len=64)
    model = build_model(spec, 50, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    out = model(input_ids=token_ids, labels=token_ids)
    out.loss.backward()
    opt.step()
    model.eval()
    c = capture(model, token_ids, [act_name("mlp_out", 0)])
    assert c[act_name("mlp_out", 0)].abs().max() == 0
