"""Attention patterns without eager attention (``iclab.models.patterns``): on every family in
iclab's table, a model on SDPA gives, from its queries and keys, the pattern HF's own eager
attention returns (``output_attentions=True``), with the family's scaling, its rotary
embedding, GQA, sliding windows and padding, while its forward stays SDPA's to the bit.
Layers whose weights SDPA would not reproduce (softcapping) run eager, alone; a model HF
runs only on eager (Gemma 2) keeps eager, whose weights are the pattern.
"""

from __future__ import annotations

import sys

import pytest
import torch
import transformers as T
from test_identities import GQA, TABLE, build

from iclab.models.capture import capture
from iclab.models.hooks import backbone, hooks
from iclab.models.names import act_name
from iclab.models.patterns import pattern_from_qk

WINDOW = 4  # shorter than the prompts, so that sliding windows mask something

#: variants that exercise what the defaults leave out: windows that bite, scaling by layer,
#: a full layer beside a sliding one, Gemma 2 without softcapping (with it: the next test)
VARIANTS = {
    **TABLE,
    "mistral": lambda: T.MistralConfig(**GQA, sliding_window=WINDOW),
    "qwen2": lambda: T.Qwen2Config(**GQA, use_sliding_window=True, sliding_window=WINDOW, max_window_layers=1),
    "gemma2": lambda: T.Gemma2Config(**GQA, head_dim=8, sliding_window=WINDOW, attn_logit_softcapping=None,
                                     query_pre_attn_scalar=16),
    "gemma3_text": lambda: T.Gemma3TextConfig(**GQA, head_dim=8, sliding_window=WINDOW, query_pre_attn_scalar=16,
                                              layer_types=["sliding_attention", "full_attention"]),
    "gpt2": lambda: T.GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                                 scale_attn_by_inverse_layer_idx=True),
}


def _ids(batch: int = 2, pos: int = 11) -> torch.Tensor:
    return torch.randint(1, 64, (batch, pos), generator=torch.Generator().manual_seed(1))


def _eager_patterns(model, inputs: dict) -> tuple[torch.Tensor, ...]:
    """HF's own patterns: the eager implementation's ``output_attentions``."""
    lm = backbone(model)
    before = lm.config._attn_implementation
    lm.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            return model(**inputs, output_attentions=True).attentions
    finally:
        lm.set_attn_implementation(before)


def _refuse_eager(monkeypatch, model) -> None:
    """Make the family's eager attention raise: the pattern must come from SDPA's q and k."""
    attn = type(next(m for n, m in model.named_modules() if n.endswith(("self_attn", ".attn", "attention"))))

    def refused(*a, **k):
        raise AssertionError("eager attention ran")
    monkeypatch.setattr(sys.modules[attn.__module__], "eager_attention_forward", refused)


@pytest.mark.parametrize("model_type", sorted(VARIANTS))
def test_patterns_from_q_and_k_equal_eager_ones_and_the_forward_stays_sdpa(model_type, monkeypatch):
    model = build(VARIANTS[model_type]())
    sdpa = model._supports_sdpa  # HF runs Gemma 2 on eager only
    backbone(model).set_attn_implementation("sdpa" if sdpa else "eager")
    ids = _ids()
    want = _eager_patterns(model, {"input_ids": ids})
    with torch.no_grad():
        bare = model(input_ids=ids).logits
    n = len(want)
    seen = []
    if sdpa:
        _refuse_eager(monkeypatch, model)
    names = [act_name(s, l) for l in range(n) for s in ("pattern", "v", "z")]
    with hooks(model, {act_name("pattern", 0): lambda a: seen.append(backbone(model).config._attn_implementation)},
               read_only={act_name("pattern", 0)}):
        cache = capture(model, ids, names)
    assert seen == ["iclab_sdpa" if sdpa else "iclab_eager"]
    assert backbone(model).config._attn_implementation == ("sdpa" if sdpa else "eager")
    torch.testing.assert_close(cache.logits, bare, atol=0, rtol=0)  # SDPA's forward, to the bit
    for layer in range(n):
        got = cache[act_name("pattern", layer)]  # (batch, head, query, key)
        torch.testing.assert_close(got, want[layer], atol=1e-6, rtol=0)
        v = cache[act_name("v", layer)]  # (batch, pos, kv_head, d_head)
        v = v.repeat_interleave(got.shape[1] // v.shape[2], dim=2)  # (batch, pos, head, d_head)
        z = torch.einsum("bhij,bjhd->bihd", got, v)  # the pattern gives SDPA's own head outputs
        torch.testing.assert_close(z, cache[act_name("z", layer)], atol=1e-5, rtol=0)
    if model_type in ("mistral", "gemma2", "gemma3_text"):  # the window masks keys more than WINDOW back
        assert want[0][0, 0, -1, : -WINDOW].abs().max() == 0 and want[0][0, 0, -1, -WINDOW:].min() > 0


def test_left_padding_and_one_layer_only(monkeypatch):
    """A padded batch (the mask is a tensor, not SDPA's is_causal) and one layer asked: the
    other layers are not computed twice."""
    model = build(TABLE["llama"]())
    ids = _ids(3, 9)
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    mask[1, :1] = 0
    inputs = {"input_ids": ids, "attention_mask": mask}
    want = _eager_patterns(model, inputs)
    calls = []
    real = pattern_from_qk
    monkeypatch.setattr("iclab.models.hooks.pattern_from_qk", lambda *a, **k: calls.append(1) or real(*a, **k))
    _refuse_eager(monkeypatch, model)
    cache = capture(model, inputs, [act_name("pattern", 1)])
    assert len(calls) == 1
    torch.testing.assert_close(cache[act_name("pattern", 1)][:, :, 3:], want[1][:, :, 3:], atol=1e-6, rtol=0)
    torch.testing.assert_close(cache[act_name("pattern", 1)], want[1], atol=1e-6, rtol=0)  # pad queries too


def test_softcapping_runs_that_layer_on_eager_and_agrees_with_eager():
    """Softcapped scores (Gemma 3 with ``attn_logit_softcapping``) are not SDPA's: layers whose
    pattern is asked run the family's eager attention (HF's SDPA refuses softcapping, so
    every layer is asked here)."""
    model = build(T.Gemma3TextConfig(**GQA, head_dim=8, sliding_window=WINDOW, attn_logit_softcapping=5.0,
                                     layer_types=["sliding_attention", "full_attention"]))
    backbone(model).set_attn_implementation("sdpa")
    ids = _ids()
    want = _eager_patterns(model, {"input_ids": ids})
    backbone(model).set_attn_implementation("eager")
    with torch.no_grad():
        eager_logits = model(input_ids=ids).logits
    backbone(model).set_attn_implementation("sdpa")
    cache = capture(model, ids, "blocks.*.attn.hook_pattern")
    for layer, w in enumerate(want):
        torch.testing.assert_close(cache[act_name("pattern", layer)], w, atol=1e-6, rtol=0)
    torch.testing.assert_close(cache.logits, eager_logits, atol=1e-5, rtol=0)


class _Causal(torch.nn.Module):
    is_causal = True


@pytest.mark.parametrize("mask_kind", ["none", "bool", "float"])
def test_an_alibi_position_bias_is_applied_as_sdpa_applies_it(mask_kind):
    """ALiBi passed to SDPA as ``position_bias``: pattern @ v is HF's SDPA output."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    g = torch.Generator().manual_seed(0)
    B, H, T_, D = 2, 4, 7, 8
    q, k, v = (torch.randn(B, H, T_, D, generator=g) for _ in range(3))
    slopes = 2.0 ** -torch.arange(1, H + 1)  # (head,)
    alibi = slopes[:, None, None] * (torch.arange(T_)[None, :] - torch.arange(T_)[:, None])  # (head, query, key)
    tri = torch.ones(T_, T_, dtype=torch.bool).tril()
    mask = {"none": None, "bool": tri.expand(B, 1, T_, T_),
            "float": torch.zeros(B, 1, T_, T_).masked_fill(~tri, -1e9) + 0.25 * torch.randn(B, 1, T_, T_, generator=g)}
    m = _Causal().eval()
    out, _ = sdpa_attention_forward(m, q, k, v, mask[mask_kind], scaling=0.3, position_bias=alibi[None])
    pattern = pattern_from_qk(m, q, k, mask[mask_kind], scaling=0.3, position_bias=alibi[None])
    torch.testing.assert_close(torch.matmul(pattern, v).transpose(1, 2), out, atol=1e-5, rtol=0)
    assert pattern[0, 0].triu(1).abs().max() < 1e-6  # causal in every case
