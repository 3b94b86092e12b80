"""The wider vocabulary (q, k, v, per-head results, MLP pre/post, position embedding, norm
scales, a writable pattern), names filters and text inputs, on every tiny family.

Known answers come from outside the hooks: the attention maths written out (softmax of
scaled q·k under the causal mask, then pattern @ v), HF's own rotary embedding applied to
the HF projection modules, the native output projection and MLP modules called on the
captured inputs, and the norm formula with the norm's own weight and bias.
"""

from __future__ import annotations

import math

import pytest
import torch

from iclab.errors import ConfigError
from iclab.models.capture import capture
from iclab.models.hooks import anatomy, head_weights, model_names
from iclab.models.load import load_model
from iclab.models.names import act_name
from iclab.models.patch import Replace, patch

ATOL = 1e-5


def kv_group(tiny_lm) -> int:
    return tiny_lm.n_heads // (2 if tiny_lm.family == "qwen2" else tiny_lm.n_heads)


def test_pattern_is_the_softmax_of_q_and_k_and_z_is_pattern_times_v(tiny_lm, token_ids):
    m, T = tiny_lm.model, token_ids.shape[1]
    names = [act_name(s, l) for l in range(tiny_lm.n_layers) for s in ("q", "k", "v", "pattern", "z")]
    c = capture(m, token_ids, names)
    g = kv_group(tiny_lm)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for layer in range(tiny_lm.n_layers):
        q, k, v = (c[act_name(s, layer)] for s in "qkv")  # (batch, pos, head or kv_head, d_head)
        assert k.shape[2] == v.shape[2] == tiny_lm.n_heads // g
        k, v = k.repeat_interleave(g, dim=2), v.repeat_interleave(g, dim=2)  # query head h reads KV head h // g
        scores = torch.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(tiny_lm.d_head)  # (batch, head, query, key)
        want = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        torch.testing.assert_close(c[act_name("pattern", layer)], want, atol=ATOL, rtol=0)
        torch.testing.assert_close(c[act_name("z", layer)], torch.einsum("bhij,bjhd->bihd", want, v), atol=ATOL, rtol=0)


def test_v_is_the_value_projection_of_the_layer_input(tiny_lm, token_ids):
    m = tiny_lm.model
    c = capture(m, token_ids, [act_name("resid_pre", 1), act_name("v", 1)])
    with torch.no_grad():
        native = tiny_lm.values(m, 1, c[act_name("resid_pre", 1)])  # (batch, pos, head, d_head), per query head
    torch.testing.assert_close(c[act_name("v", 1)].repeat_interleave(kv_group(tiny_lm), dim=2), native,
                               atol=ATOL, rtol=0)


def test_q_and_k_of_rotary_families_are_after_the_rotation(tiny_lm, token_ids):
    """On llama and qwen2, hook_q is q_proj(norm(x)) rotated by HF's own rotary embedding
    (TransformerLens's hook_rot_q); on GPT-2 it is the query third of c_attn."""
    m = tiny_lm.model
    c = capture(m, token_ids, [act_name("resid_pre", 0), act_name("q", 0), act_name("k", 0)])
    x = c[act_name("resid_pre", 0)]
    with torch.no_grad():
        if tiny_lm.family == "gpt2":
            block = m.transformer.h[0]
            q, k, _ = block.attn.c_attn(block.ln_1(x)).split(tiny_lm.d_model, dim=-1)
            q, k = q.unflatten(-1, (-1, tiny_lm.d_head)), k.unflatten(-1, (-1, tiny_lm.d_head))
        else:
            from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

            block = m.model.layers[0]
            h = block.input_layernorm(x)
            q = block.self_attn.q_proj(h).unflatten(-1, (-1, tiny_lm.d_head)).transpose(1, 2)  # (batch, head, pos, d)
            k = block.self_attn.k_proj(h).unflatten(-1, (-1, tiny_lm.d_head)).transpose(1, 2)
            pos = torch.arange(x.shape[1])[None]
            cos, sin = m.model.rotary_emb(x, pos)
            unrotated_q = q.transpose(1, 2)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            q, k = q.transpose(1, 2), k.transpose(1, 2)  # (batch, pos, head, d_head)
            assert not torch.allclose(unrotated_q, c[act_name("q", 0)], atol=1e-3)  # the rotation did something
    torch.testing.assert_close(c[act_name("q", 0)], q, atol=ATOL, rtol=0)
    torch.testing.assert_close(c[act_name("k", 0)], k, atol=ATOL, rtol=0)


def test_head_results_sum_to_attn_out_minus_the_bias(tiny_lm, token_ids):
    m = tiny_lm.model
    for layer in range(tiny_lm.n_layers):
        c = capture(m, token_ids, [act_name("result", layer), act_name("attn_out", layer), act_name("z", layer)])
        result = c[act_name("result", layer)]  # (batch, pos, head, d_model)
        bias = tiny_lm.o_bias(m, layer)
        torch.testing.assert_close(result.sum(2) + bias, c[act_name("attn_out", layer)], atol=ATOL, rtol=0)
        # one head's result is the output projection with only that head's columns of W_O
        z = c[act_name("z", layer)]
        for head in (0, 3):
            w = tiny_lm.o_weight_cols(m, layer, head).detach()  # gpt2: (d_head, d_model); others (d_model, d_head)
            want = z[:, :, head] @ (w if tiny_lm.family == "gpt2" else w.t())  # (batch, pos, d_model)
            torch.testing.assert_close(result[:, :, head], want, atol=ATOL, rtol=0)
    if tiny_lm.family == "gpt2":
        assert bias.abs().min() > 0  # the fixture perturbs biases: forgetting b_O would show


def test_head_weights_of_an_unknown_linear_module_are_measured():
    """Any linear output projection works: one that is neither nn.Linear nor Conv1D is measured."""
    lin = torch.nn.Linear(8, 6)

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = lin

        def forward(self, x):
            return self.inner(x)

    w, b = head_weights(Wrapped(), n_heads=2)
    torch.testing.assert_close(w, lin.weight.detach().t().unflatten(0, (2, 4)), atol=1e-6, rtol=0)
    torch.testing.assert_close(b, lin.bias.detach(), atol=1e-6, rtol=0)


def test_writing_head_results_sets_attn_out(tiny_lm, token_ids):
    m = tiny_lm.model
    name = act_name("result", 1)
    c = capture(m, token_ids, [name, act_name("attn_out", 1)])
    kept = c[name].clone()
    kept[:, :, 2] = 0.0  # remove head 2's write
    via_result = patch(m, token_ids, {name: Replace(kept)})
    without_head = c[act_name("attn_out", 1)] - c[name][:, :, 2]
    via_attn_out = patch(m, token_ids, {act_name("attn_out", 1): Replace(without_head)})
    torch.testing.assert_close(via_result, via_attn_out, atol=ATOL, rtol=0)


def test_mlp_pre_and_post_are_the_activation_input_and_the_output_projection_input(tiny_lm, token_ids):
    m = tiny_lm.model
    L = 1
    c = capture(m, token_ids, [act_name(s, L) for s in ("resid_mid", "mlp_pre", "mlp_post", "mlp_out")])
    with torch.no_grad():
        if tiny_lm.family == "gpt2":
            mlp = m.transformer.h[L].mlp
            pre = mlp.c_fc(m.transformer.h[L].ln_2(c[act_name("resid_mid", L)]))
            post, out = mlp.act(pre), mlp.c_proj(mlp.act(pre))
        else:
            block = m.model.layers[L]
            h = block.post_attention_layernorm(c[act_name("resid_mid", L)])
            pre = block.mlp.gate_proj(h)
            post = block.mlp.act_fn(pre) * block.mlp.up_proj(h)
            out = block.mlp.down_proj(post)
    torch.testing.assert_close(c[act_name("mlp_pre", L)], pre, atol=ATOL, rtol=0)
    torch.testing.assert_close(c[act_name("mlp_post", L)], post, atol=ATOL, rtol=0)
    torch.testing.assert_close(c[act_name("mlp_out", L)], out, atol=ATOL, rtol=0)


def test_patching_mlp_post_changes_mlp_out_by_the_output_projection(tiny_lm, token_ids):
    m, L = tiny_lm.model, 0
    c = capture(m, token_ids, [act_name("mlp_post", L), act_name("mlp_out", L)])
    down = anatomy(m).down(L)
    zeroed = patch(m, token_ids, {act_name("mlp_post", L): Replace(torch.zeros(c[act_name("mlp_post", L)].shape[-1]))})
    with torch.no_grad():
        bias_only = down(torch.zeros_like(c[act_name("mlp_post", L)]))  # (batch, pos, d_model)
    want = patch(m, token_ids, {act_name("mlp_out", L): Replace(bias_only)})
    torch.testing.assert_close(zeroed, want, atol=ATOL, rtol=0)


def test_position_embedding_is_gpt2s_wpe_and_absent_elsewhere(tiny_lm, token_ids):
    m = tiny_lm.model
    if tiny_lm.family != "gpt2":
        assert "hook_pos_embed" not in model_names(m)
        with pytest.raises(ConfigError, match="no learned position embedding"):
            capture(m, token_ids, ["hook_pos_embed"])
        return
    c = capture(m, token_ids, ["hook_embed", "hook_pos_embed", act_name("resid_pre", 0)])
    T = token_ids.shape[1]
    with torch.no_grad():
        wpe = m.transformer.wpe(torch.arange(T))  # (pos, d_model)
    torch.testing.assert_close(c["hook_pos_embed"], wpe.expand(token_ids.shape[0], -1, -1), atol=0, rtol=0)
    torch.testing.assert_close(c[act_name("resid_pre", 0)], c["hook_embed"] + c["hook_pos_embed"], atol=ATOL, rtol=0)
    # written like any other activation: zero positions leave the token embedding alone
    zero_pos = patch(m, token_ids, {"hook_pos_embed": Replace(torch.zeros(tiny_lm.d_model))})
    want = patch(m, token_ids, {act_name("resid_pre", 0): Replace(c["hook_embed"])})
    torch.testing.assert_close(zero_pos, want, atol=ATOL, rtol=0)


@pytest.mark.parametrize("which", ["ln_final", "ln1", "ln2"])
def test_norm_scale_reproduces_the_norm(tiny_lm, token_ids, which):
    """norm(x) = w * c(x) / scale + b with the norm's own weight and bias (LayerNorm: c(x) = x -
    mean; RMSNorm: c(x) = x, no bias)."""
    m, L = tiny_lm.model, 1
    if which == "ln_final":
        names, norm = ["ln_final.hook_scale", act_name("resid_post", L)], tiny_lm.final_norm(m)
    elif which == "ln1":
        names = [act_name("ln1_scale", L), act_name("resid_pre", L)]
        norm = m.transformer.h[L].ln_1 if tiny_lm.family == "gpt2" else m.model.layers[L].input_layernorm
    else:
        names = [act_name("ln2_scale", L), act_name("resid_mid", L)]
        norm = m.transformer.h[L].ln_2 if tiny_lm.family == "gpt2" else m.model.layers[L].post_attention_layernorm
    c = capture(m, token_ids, names)
    scale, x = c[names[0]], c[names[1]]
    assert scale.shape == (*token_ids.shape, 1)
    centred = x - x.mean(-1, keepdim=True) if tiny_lm.family == "gpt2" else x
    bias = norm.bias.detach() if getattr(norm, "bias", None) is not None else 0.0
    with torch.no_grad():
        torch.testing.assert_close(norm(x), norm.weight.detach() * centred / scale + bias, atol=ATOL, rtol=0)


def test_scales_are_read_only(tiny_lm, token_ids):
    for name in ("ln_final.hook_scale", act_name("ln1_scale", 0)):
        with pytest.raises(ConfigError, match="not patched"):
            patch(tiny_lm.model, token_ids, {name: Replace(torch.ones(1))})


def test_writing_the_pattern_recomputes_z(tiny_lm, token_ids):
    """A uniform causal pattern makes each head's z the running mean of its values."""
    m, L, T = tiny_lm.model, 1, token_ids.shape[1]
    uniform = torch.ones(T, T).tril()
    uniform = uniform / uniform.sum(-1, keepdim=True)  # (query, key)
    c = capture(m, token_ids, [act_name("z", L), act_name("v", L), act_name("pattern", L)],
                edits={act_name("pattern", L): Replace(uniform)})
    v = c[act_name("v", L)].repeat_interleave(kv_group(tiny_lm), dim=2)  # (batch, pos, head, d_head)
    torch.testing.assert_close(c[act_name("pattern", L)][0, 0], uniform, atol=0, rtol=0)
    torch.testing.assert_close(c[act_name("z", L)], torch.einsum("ij,bjhd->bihd", uniform, v), atol=ATOL, rtol=0)
    # and the clean pattern written back gives the clean run (up to eager-vs-SDPA rounding)
    clean = capture(m, token_ids, [act_name("pattern", L)])
    same = patch(m, token_ids, {act_name("pattern", L): Replace(clean[act_name("pattern", L)])})
    torch.testing.assert_close(same, clean.logits, atol=ATOL, rtol=0)


def test_reading_q_k_v_leaves_every_logit_unchanged_and_restores_sdpa(tiny_lm, token_ids):
    m = tiny_lm.model
    with torch.no_grad():
        bare = m(input_ids=token_ids).logits
    c = capture(m, token_ids, "blocks.*.attn.hook_[qkv]")
    assert set(c) == {act_name(s, l) for s in "qkv" for l in range(tiny_lm.n_layers)}
    torch.testing.assert_close(c.logits, bare, atol=0, rtol=0)
    assert m.config._attn_implementation == "sdpa"


# ---------------------------------------------------------------- names filters through capture


def test_capture_takes_a_glob_or_a_predicate(tiny_lm, token_ids):
    m = tiny_lm.model
    by_glob = capture(m, token_ids, "blocks.*.hook_resid_post")
    assert list(by_glob) == [act_name("resid_post", l) for l in range(tiny_lm.n_layers)]
    by_fn = capture(m, token_ids, lambda n: n.endswith("hook_resid_post"))
    for name in by_glob:
        torch.testing.assert_close(by_fn[name], by_glob[name], atol=0, rtol=0)
    mixed = capture(m, token_ids, ["hook_embed", "blocks.1.attn.hook_*"])
    assert list(mixed)[0] == "hook_embed" and act_name("result", 1) in mixed and act_name("z", 0) not in mixed
    with pytest.raises(ConfigError, match="matches no activation"):
        capture(m, token_ids, "blocks.*.hook_nothing")


# ---------------------------------------------------------------- text inputs


def test_text_is_tokenised_with_the_tokenizer_given(char_lm, char_tokenizer):
    text = "01101 -> 1"
    ids = char_tokenizer(text)["input_ids"]
    name = act_name("resid_post", 1)
    from_text = capture(char_lm, text, [name], tokenizer=char_tokenizer)
    from_ids = capture(char_lm, ids, [name])
    torch.testing.assert_close(from_text[name], from_ids[name], atol=0, rtol=0)
    torch.testing.assert_close(patch(char_lm, text, {}, tokenizer=char_tokenizer), from_ids.logits, atol=0, rtol=0)


def test_texts_of_different_lengths_are_right_padded(char_lm, char_tokenizer):
    texts = ["01 -> 1", "0110 -> 10"]
    name = act_name("resid_post", 1)
    both = capture(char_lm, texts, [name], tokenizer=char_tokenizer)
    short = capture(char_lm, texts[0], [name], tokenizer=char_tokenizer)
    n = short[name].shape[1]
    assert both[name].shape[:2] == (2, len(texts[1]))
    torch.testing.assert_close(both[name][0, :n], short[name][0], atol=ATOL, rtol=0)


def test_a_loaded_model_carries_its_tokenizer(char_lm_dir, char_tokenizer):
    model, tok = load_model(str(char_lm_dir), device="cpu")
    assert tok is not None
    name = act_name("resid_post", 0)
    got = capture(model, "10 -> 01", [name])
    want = capture(model, char_tokenizer("10 -> 01")["input_ids"], [name])
    torch.testing.assert_close(got[name], want[name], atol=0, rtol=0)


def test_text_without_a_tokenizer_is_refused(tiny_lm):
    with pytest.raises(TypeError, match="text needs a tokenizer"):
        capture(tiny_lm.model, "hello", [act_name("resid_post", 0)])
