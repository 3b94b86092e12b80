"""Sentence embeddings: mean pooling over the real tokens, the same alone as in a padded batch;
the packaged all-MiniLM-L6-v2 (when installed) puts a paraphrase nearer than an unrelated sentence."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from iclab.errors import ConfigError
from iclab.models.embed import MINILM_PACKAGE, lm_embeddings, packaged_minilm, sentence_embeddings

TEXTS = ["The soup was warm and rich.", "Rain delayed the tennis final, which resumed after a two hour break."]


@pytest.fixture(scope="module")
def tiny_encoder_dir(word_tokenizer, tmp_path_factory):
    """A tiny BERT encoder with the word-level tokenizer, saved as a directory."""
    from transformers import BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(vocab_size=len(word_tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(path)
    word_tokenizer.save_pretrained(path)
    return path


def test_sentence_embeddings_are_normalised_means_over_real_tokens(tiny_encoder_dir, word_tokenizer):
    from transformers import BertModel

    emb = sentence_embeddings(TEXTS, tiny_encoder_dir, batch_size=2)
    assert emb.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, rtol=1e-5)
    model = BertModel.from_pretrained(tiny_encoder_dir).eval()
    with torch.no_grad():  # the first text alone: no padding, a plain mean over its tokens
        h = model(**word_tokenizer(TEXTS[:1], return_tensors="pt")).last_hidden_state[0]  # (pos, d)
    mean = h.mean(0).numpy()
    np.testing.assert_allclose(emb[0], mean / np.linalg.norm(mean), rtol=1e-4, atol=1e-5)


def test_lm_embeddings_do_not_depend_on_padding(word_lm_dir):
    from iclab.models.load import load_model

    model, tok = load_model(str(word_lm_dir))
    both = lm_embeddings(model, tok, TEXTS, batch_size=2)
    alone = lm_embeddings(model, tok, TEXTS[:1])
    assert both.shape == (2, 32)
    np.testing.assert_allclose(both[0], alone[0], rtol=1e-4, atol=1e-5)


def test_a_missing_encoder_is_one_line(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="holds no config.json"):
        sentence_embeddings(TEXTS, tmp_path)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == MINILM_PACKAGE else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'iclab\[embeddings\]'"):
        packaged_minilm()


@pytest.mark.skipif(importlib.util.find_spec(MINILM_PACKAGE) is None, reason="pip install 'iclab[embeddings]'")
def test_the_packaged_minilm_finds_the_paraphrase():
    e = sentence_embeddings(["A cat is sitting on the mat.", "A kitten rests on a rug.",
                             "The central bank raised interest rates."], packaged_minilm())
    assert e.shape == (3, 384)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2
