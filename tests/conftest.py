"""Shared fixtures: tiny causal LMs of three families, saved and reloaded through iclab.

Each model is built from a config (gpt2 and llama through ``iclab.models.build``, qwen2
straight from its ``transformers`` config), written with ``save_pretrained`` and read back
with ``iclab.models.load.load_model``, so the tests run on models as the real loading path
returns them (SDPA attention, eval mode). Models are session-scoped and tiny
(d_model 32, 2 layers, 4 heads, vocab 50); a test that changes weights works on a copy.

Next to each model, :class:`TinyLM` holds *native* accessors written here against the HF
module tree of each family (not through ``iclab.models.families``), so the activation API
can be checked against an independent reading of the same model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import PreTrainedModel, Qwen2Config, Qwen2ForCausalLM

from iclab.models import names as names_module
from iclab.models.build import ModelSpec, build_model
from iclab.models.load import load_model

os.environ.setdefault("ICLAB_NO_PROGRESS", "1")

VOCAB, D_MODEL, N_LAYERS, N_HEADS, MAX_LEN = 50, 32, 2, 4, 64
D_HEAD = D_MODEL // N_HEADS
FAMILIES = ("gpt2", "llama", "qwen2")


@dataclass
class TinyLM:
    """A reloaded tiny model plus native (per-family) access to its modules.

    Attributes
    ----------
    family : str
    model : PreTrainedModel
        As returned by ``load_model`` (SDPA attention, eval mode).
    built : PreTrainedModel
        The model before saving (same weights), to check the round trip.
    path : Path
        The ``save_pretrained`` directory.
    layers, embed, final_norm, lm_head : callables on the model → module
    attn, o_proj : callables (model, layer) → module
    values : callable (model, layer, resid_pre) → (batch, pos, head, d_head)
        Each query head's value vectors, computed from the layer input by the HF modules.
    """

    family: str
    model: PreTrainedModel
    built: PreTrainedModel
    path: Path
    layers: Callable[[nn.Module], nn.ModuleList]
    embed: Callable[[nn.Module], nn.Module]
    final_norm: Callable[[nn.Module], nn.Module]
    lm_head: Callable[[nn.Module], nn.Module]
    attn: Callable[[nn.Module, int], nn.Module]
    o_proj: Callable[[nn.Module, int], nn.Module]
    values: Callable[[nn.Module, int, torch.Tensor], torch.Tensor]
    n_layers: int = N_LAYERS
    n_heads: int = N_HEADS
    d_model: int = D_MODEL
    d_head: int = D_HEAD
    vocab: int = VOCAB

    def o_bias(self, model: nn.Module, layer: int) -> torch.Tensor:
        """The output projection's bias, or zeros if it has none, (d_model,)."""
        bias = getattr(self.o_proj(model, layer), "bias", None)
        return torch.zeros(self.d_model) if bias is None else bias.detach()

    def o_weight_cols(self, model: nn.Module, layer: int, head: int) -> torch.Tensor:
        """The part of the output projection's weight that reads ``head`` (a view, for editing)."""
        w = self.o_proj(model, layer).weight
        cols = slice(head * self.d_head, (head + 1) * self.d_head)
        # GPT-2's Conv1D stores (in, out); nn.Linear stores (out, in).
        return w[cols, :] if self.family == "gpt2" else w[:, cols]


def _gpt2_values(model, layer, x):
    block = model.transformer.h[layer]
    qkv = block.attn.c_attn(block.ln_1(x))  # (batch, pos, 3 * d_model)
    v = qkv.split(D_MODEL, dim=-1)[2]  # (batch, pos, d_model)
    return v.unflatten(-1, (N_HEADS, D_HEAD))  # (batch, pos, head, d_head)


def _llama_values(model, layer, x):
    block = model.model.layers[layer]
    v = block.self_attn.v_proj(block.input_layernorm(x))  # (batch, pos, kv_head * d_head)
    v = v.unflatten(-1, (-1, D_HEAD))  # (batch, pos, kv_head, d_head)
    return v.repeat_interleave(N_HEADS // v.shape[2], dim=2)  # (batch, pos, head, d_head)


def _native(family: str) -> dict:
    if family == "gpt2":
        return dict(layers=lambda m: m.transformer.h, embed=lambda m: m.transformer.wte,
                    final_norm=lambda m: m.transformer.ln_f, lm_head=lambda m: m.lm_head,
                    attn=lambda m, l: m.transformer.h[l].attn, o_proj=lambda m, l: m.transformer.h[l].attn.c_proj,
                    values=_gpt2_values)
    return dict(layers=lambda m: m.model.layers, embed=lambda m: m.model.embed_tokens,
                final_norm=lambda m: m.model.norm, lm_head=lambda m: m.lm_head,
                attn=lambda m, l: m.model.layers[l].self_attn, o_proj=lambda m, l: m.model.layers[l].self_attn.o_proj,
                values=_llama_values)


def _build(family: str) -> PreTrainedModel:
    if family in ("gpt2", "llama"):
        spec = ModelSpec(family=family, n_layers=N_LAYERS, d_model=D_MODEL, n_heads=N_HEADS, max_len=MAX_LEN)
        return build_model(spec, VOCAB, seed=1)
    # qwen2: grouped-query attention (2 KV heads for 4 query heads) and biased q/k/v projections
    config = Qwen2Config(vocab_size=VOCAB, hidden_size=D_MODEL, intermediate_size=2 * D_MODEL,
                         num_hidden_layers=N_LAYERS, num_attention_heads=N_HEADS, num_key_value_heads=2,
                         max_position_embeddings=MAX_LEN, tie_word_embeddings=False)
    with torch.random.fork_rng():
        torch.manual_seed(2)
        return Qwen2ForCausalLM(config)


def _perturb_norms_and_biases(model: nn.Module, seed: int) -> None:
    """HF initialises norms to weight 1, bias 0 and linear biases to 0; perturb them so that
    a test that mixes up 'before' and 'after' a norm, or forgets a bias, cannot pass by accident."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "ln_" in name or name.endswith("bias"):
                p.add_(0.3 * torch.randn(p.shape, generator=g))


@pytest.fixture(scope="session")
def tiny_lms(tmp_path_factory) -> dict[str, TinyLM]:
    """Every family's tiny model, saved and reloaded with ``load_model``."""
    out = {}
    for i, family in enumerate(FAMILIES):
        built = _build(family).eval()
        _perturb_norms_and_biases(built, seed=10 + i)
        path = tmp_path_factory.mktemp(f"tiny-{family}")
        built.save_pretrained(path)
        model, _ = load_model(str(path), device="cpu")
        # HF installs its own output-capturing hooks the first time hidden states are asked
        # for; do it now so that hook counts in tests see only iclab's hooks.
        with torch.no_grad():
            model(torch.zeros(1, 4, dtype=torch.long), output_hidden_states=True)
        out[family] = TinyLM(family, model, built, path, **_native(family))
    return out


@pytest.fixture(scope="session", params=FAMILIES)
def tiny_lm(request, tiny_lms) -> TinyLM:
    """One tiny model per family (tests using it run once per family)."""
    return tiny_lms[request.param]


@pytest.fixture(scope="session")
def token_ids() -> torch.Tensor:
    """Random token ids, (batch=3, pos=10)."""
    return torch.randint(0, VOCAB, (3, 10), generator=torch.Generator().manual_seed(0))


@dataclass(frozen=True)
class DocumentedName:
    """One row of the table in the ``iclab.models.names`` docstring."""

    template: str  # e.g. "blocks.{l}.hook_resid_post"
    axes: tuple[str, ...]  # e.g. ("batch", "pos", "d_model")
    patchable: bool

    def names(self, n_layers: int) -> list[str]:
        if "{l}" not in self.template:
            return [self.template]
        return [self.template.format(l=layer) for layer in range(n_layers)]


@pytest.fixture(scope="session")
def documented_names() -> list[DocumentedName]:
    """The activation-name table as documented in ``iclab/models/names.py``."""
    rows = re.findall(r"^``(\S+)``\s+\(([^)]*)\)\s+(yes|no)\s*$", names_module.__doc__, flags=re.M)
    assert len(rows) == 19, f"names.py docstring table changed shape: {rows}"
    return [DocumentedName(t, tuple(a.strip() for a in axes.split(",")), p == "yes") for t, axes, p in rows]


def count_hooks(model: nn.Module) -> int:
    """Every forward/backward hook on every module of ``model`` (independent of iclab's hook_count),
    and every hook iclab keeps on an attention module for the sites inside attention (q, k, v,
    pattern), which the model's attention function reads from ``_iclab_attn_hooks``."""
    kinds = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    torch_hooks = sum(len(getattr(m, k)) for m in model.modules() for k in kinds)
    attention_hooks = sum(len(fns) for m in model.modules() for fns in vars(m).get("_iclab_attn_hooks", {}).values())
    return torch_hooks + attention_hooks


@pytest.fixture(scope="session")
def hooks_on():
    """``hooks_on(model)``: number of hooks attached anywhere in the model."""
    return count_hooks


# ---------------------------------------------------------------- a tiny GPT-2 that reads text


def make_char_tokenizer():
    """A character-level fast tokenizer covering every natural task's text, built offline."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from iclab.tasks import get_task, shipped_sentences, task_names

    texts = [s.text for s in shipped_sentences()] + [get_task(n).instruction for n in task_names()]
    chars = sorted(set("".join(texts)) | set("01 ->\n"))
    vocab = {"[PAD]": 0, "[UNK]": 1, **{c: i + 2 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # one token per character
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")


CHAR_SPEC = ModelSpec(family="gpt2", n_layers=2, d_model=32, n_heads=4, max_len=512)


@pytest.fixture(scope="session")
def char_tokenizer():
    return make_char_tokenizer()


@pytest.fixture(scope="session")
def char_lm(char_tokenizer):
    """A tiny GPT-2 (2 layers, width 32) over ``char_tokenizer``; tests that train work on a copy."""
    return build_model(CHAR_SPEC, len(char_tokenizer), seed=0).eval()


@pytest.fixture(scope="session")
def char_lm_dir(char_lm, char_tokenizer, tmp_path_factory):
    """``char_lm`` and its tokenizer written with ``save_pretrained``."""
    path = tmp_path_factory.mktemp("tiny-char-gpt2")
    char_lm.save_pretrained(path)
    char_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def bitwise_enc(char_tokenizer):
    """Two-shot prompts of bitwise XOR, AND and Null, six each, encoded for ``char_lm``."""
    import numpy as np

    from iclab.probes.task_text import encode_prompts
    from iclab.tasks import build_prompts, get_task

    rng = np.random.default_rng(0)
    prompts = [p for name in ("bitwise-xor", "bitwise-and", "bitwise-null")
               for p in build_prompts(get_task(name), rng, 6, k=2)]
    return encode_prompts(char_tokenizer, prompts)


# ---------------------------------------------------------------- a tiny GPT-2 that reads the labelled sets


def make_word_tokenizer(extra: tuple[str, ...] = ()):
    """A word-level fast tokenizer (whitespace and punctuation split) covering the shipped labelled
    sets, the out-of-distribution sentences and the default unrelated labels: every label word is
    one token, as in real vocabularies."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    texts = _labelled_texts(extra)
    found = set(re.findall(r"\w+|[^\w\s]", " ".join(texts)))
    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(sorted(found))}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")


def _labelled_texts(extra: tuple[str, ...] = ()) -> list[str]:
    """The shipped labelled sets, the out-of-distribution sentences, every set's prefixes and labels
    and the default unrelated labels."""
    from iclab.tasks.labelled import SHIPPED, ood_sentences, shipped_set

    texts = [t for name in SHIPPED for t in shipped_set(name).texts] + list(ood_sentences())
    texts += [" ".join([*labels, inp, lab]) for inp, lab, labels in SHIPPED.values()]
    return texts + ["foo bar baz qux zap wug Input: Label:", *extra]


def make_bpe_tokenizer():
    """A byte-level BPE tokenizer in Qwen2's own class (what ``AutoTokenizer`` gives a qwen2 model),
    its merges learnt on the labelled sets until every word, with and without its leading space
    (``Ġpositive``), is one token: label words are single tokens after ``Sentiment:``, as in real
    vocabularies."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    texts = _labelled_texts()
    texts += [" " + t for t in texts]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=100_000, show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                       special_tokens=["<|endoftext|>"]))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" "))
              for m in json.loads(bpe.to_str())["model"]["merges"]]
    return Qwen2Tokenizer(vocab=bpe.get_vocab(), merges=merges)


@pytest.fixture(scope="session")
def word_tokenizer():
    return make_word_tokenizer()


@pytest.fixture(scope="session")
def word_lm_dir(word_tokenizer, tmp_path_factory):
    """A tiny GPT-2 (2 layers, width 32) over ``word_tokenizer``, saved with it by ``save_pretrained``."""
    path = tmp_path_factory.mktemp("tiny-word-gpt2")
    build_model(CHAR_SPEC, len(word_tokenizer), seed=0).save_pretrained(path)
    word_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def word_lm_dirs(word_lm_dir, word_tokenizer, tmp_path_factory) -> dict[str, Path]:
    """Tiny models of three families whose tokenizers make every label word one token, each saved
    with its tokenizer: the GPT-2 of ``word_lm_dir`` and a Llama over ``word_tokenizer``, and a
    Qwen2 (grouped-query attention, biased q/k/v) over a byte-level BPE in Qwen2's own tokenizer
    class (:func:`make_bpe_tokenizer`); each 2 layers of width 32."""
    out = {"gpt2": Path(word_lm_dir)}
    bpe = make_bpe_tokenizer()
    llama = build_model(ModelSpec(family="llama", n_layers=2, d_model=32, n_heads=4, max_len=512),
                        len(word_tokenizer), seed=3)
    config = Qwen2Config(vocab_size=len(bpe), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=False)
    with torch.random.fork_rng():
        torch.manual_seed(4)
        qwen2 = Qwen2ForCausalLM(config)
    for family, model, tok in (("llama", llama, word_tokenizer), ("qwen2", qwen2, bpe)):
        path = tmp_path_factory.mktemp(f"tiny-word-{family}")
        model.save_pretrained(path)
        tok.save_pretrained(path)
        out[family] = path
    return out
