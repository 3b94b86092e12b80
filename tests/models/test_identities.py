"""Identity checks at load (``iclab.models.identities``): every family in the table passes them
on a tiny model of its own config; families found by the guess pass or are refused in one
line naming the identity and the layer; a family that adds what the names leave out (a
residual multiplier, logit softcapping, logit scaling, norms after the sublayers) is refused.
"""

from __future__ import annotations

import pytest
import torch
import transformers as T

from iclab.errors import ModelLoadError
from iclab.models import identities
from iclab.models.families import FAMILIES
from iclab.models.hooks import anatomy, backbone
from iclab.models.identities import check_identities, identity_failures
from iclab.models.load import load_model

SMALL = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
             max_position_embeddings=64)
GQA = dict(SMALL, num_key_value_heads=2)

#: a tiny config of every family in iclab's table (a new row needs one here)
TABLE = {
    "gpt2": lambda: T.GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=64),
    "gpt_neox": lambda: T.GPTNeoXConfig(**SMALL),
    "llama": lambda: T.LlamaConfig(**GQA),
    "mistral": lambda: T.MistralConfig(**GQA),
    "mixtral": lambda: T.MixtralConfig(**GQA, num_local_experts=2),
    "qwen2": lambda: T.Qwen2Config(**GQA),
    "qwen3": lambda: T.Qwen3Config(**GQA, head_dim=8),
    "gemma": lambda: T.GemmaConfig(**GQA, head_dim=8),
    "gemma2": lambda: T.Gemma2Config(**GQA, head_dim=8),
    "gemma3_text": lambda: T.Gemma3TextConfig(**GQA, head_dim=8),
    "phi3": lambda: T.Phi3Config(**GQA, pad_token_id=0),
    "olmo": lambda: T.OlmoConfig(**GQA),
    "granite": lambda: T.GraniteConfig(**GQA),
    "smollm3": lambda: T.SmolLM3Config(**GQA, pad_token_id=0),
}

#: families not in the table whose usual module names the guess finds, and whose sums hold
GUESSED_AND_SOUND = {
    "starcoder2": lambda: T.Starcoder2Config(**GQA),
    "stablelm": lambda: T.StableLmConfig(**GQA),
    "phi": lambda: T.PhiConfig(**SMALL),
    "gptj": lambda: T.GPTJConfig(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=64, rotary_dim=4),
    "gpt_bigcode": lambda: T.GPTBigCodeConfig(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=64),
}

#: (config, check, identity, layer): models the check must refuse, and the first identity that fails
REFUSED = {
    # Olmo 2 normalises the attention output after the attention; the guess takes that norm for
    # the pre-MLP norm, and the residual no longer adds up
    "olmo2": (lambda: T.Olmo2Config(**GQA, pad_token_id=0), None, "residual", 0),
    # Cohere multiplies the logits by logit_scale after the unembedding
    "cohere": (lambda: T.CohereConfig(**GQA, pad_token_id=0, bos_token_id=1, eos_token_id=2), None, "logits", None),
    # in the table, but a residual multiplier scales what each block adds
    "granite": (lambda: T.GraniteConfig(**GQA, residual_multiplier=0.5), True, "residual", 0),
    # in the table, but softcapping bends the logits
    "gemma2": (lambda: T.Gemma2Config(**GQA, head_dim=8, final_logit_softcapping=0.5), True, "logits", None),
}


def build(config) -> torch.nn.Module:
    """A tiny model of ``config`` with perturbed norms and biases (so a forgotten bias shows)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = T.AutoModelForCausalLM.from_config(config).eval()
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "norm" in name or "ln" in name or name.endswith("bias"):
                    p.add_(0.3 * torch.randn_like(p))
    return model


def saved(config, tmp_path) -> str:
    build(config).save_pretrained(tmp_path)
    return str(tmp_path)


def test_every_family_in_the_table_has_a_config_here():
    assert set(TABLE) == set(FAMILIES)


@pytest.mark.parametrize("model_type", sorted(TABLE))
def test_every_family_in_the_table_passes(model_type):
    model = build(TABLE[model_type]())
    assert model.config.model_type == model_type and not anatomy(model).family.guessed
    assert identity_failures(model) == []
    check_identities(model)
    assert backbone(model)._iclab_identities_ok


@pytest.mark.parametrize("model_type", sorted(GUESSED_AND_SOUND))
def test_guessed_families_are_checked_at_load_and_pass(model_type, tmp_path):
    model, _ = load_model(saved(GUESSED_AND_SOUND[model_type](), tmp_path), device="cpu", tokenizer="none")
    assert anatomy(model).family.guessed
    assert getattr(model, "_iclab_identities_ok", False), "load_model did not check a guessed family"


@pytest.mark.parametrize("model_type", sorted(REFUSED))
def test_a_model_whose_sums_do_not_hold_is_refused_naming_identity_and_layer(model_type, tmp_path):
    config, check, identity, layer = REFUSED[model_type]
    path = saved(config(), tmp_path)
    with pytest.raises(ModelLoadError) as e:
        load_model(path, device="cpu", tokenizer="none", check=check)
    msg = str(e.value)
    assert "\n" not in msg and f"{identity} (" in msg and path in msg and "check=False" in msg, msg
    assert (f"at layer {layer}:" in msg) if layer is not None else "at layer" not in msg, msg
    model, _ = load_model(path, device="cpu", tokenizer="none", check=False)  # the way out works
    assert not getattr(model, "_iclab_identities_ok", False)


def test_table_families_are_not_checked_unless_asked(tiny_lms, monkeypatch):
    calls = []
    monkeypatch.setattr(identities, "check_identities", lambda model, n_tokens=6: calls.append(model))
    load_model(str(tiny_lms["llama"].path), device="cpu")
    assert calls == []
    load_model(str(tiny_lms["llama"].path), device="cpu", check=True)
    assert len(calls) == 1


def test_the_check_costs_one_short_forward_pass(tiny_lms):
    model = tiny_lms["gpt2"].model
    lengths = []
    handle = model.register_forward_pre_hook(
        lambda mod, args, kwargs: lengths.append((kwargs.get("input_ids") if not args else args[0]).shape),
        with_kwargs=True)
    try:
        check_identities(model)
    finally:
        handle.remove()
    assert lengths == [torch.Size([1, 6])]


def test_a_broken_table_row_is_caught(tiny_lms, monkeypatch):
    """A row that points the final norm at the wrong module (a layer's norm) fails 'logits'."""
    from dataclasses import replace

    model = build(TABLE["llama"]())
    wrong = replace(FAMILIES["llama"], final_norm="model.layers.0.input_layernorm")
    monkeypatch.setitem(FAMILIES, "llama", wrong)
    with pytest.raises(ModelLoadError, match=r"identity check failed: logits \("):
        check_identities(model)
