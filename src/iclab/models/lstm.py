"""A small LSTM language model, as a Hugging Face ``PreTrainedModel``, for recurrent baselines.

    h_t, c_t = LSTM(E[x_t], (h_{t-1}, c_{t-1}))     (``n_layers`` stacked, width ``d_model``)
    p(x_{t+1} | x_{1:t}) = softmax(W h_t + b)

Xie et al. (2022) train LSTMs beside transformers on GINC and find that they learn in
context too (spec ``mechanisms.md``, bayesian-icl). The model saves and loads through
``save_pretrained`` / :func:`iclab.models.load.load_model` like the transformers built in
:mod:`iclab.models.build` (its config type, ``iclab-lstm``, is registered with the Auto
classes on import), and trains in :func:`iclab.train.loop.train`. It has no attention or
blocks, so probes that read activations by name do not apply to it; probes that read only
logits do.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput


class LSTMConfig(PretrainedConfig):
    """HF config of :class:`LSTMForCausalLM`: ``vocab_size``, ``d_model``, ``n_layers``."""

    model_type = "iclab-lstm"

    def __init__(self, vocab_size: int = 50, d_model: int = 128, n_layers: int = 1, **kwargs):
        self.vocab_size, self.d_model, self.n_layers = vocab_size, d_model, n_layers
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(**kwargs)


class LSTMForCausalLM(PreTrainedModel):
    """Embedding, stacked LSTM, linear read-out; ``forward(input_ids)`` gives logits (batch, pos, vocab)."""

    config_class = LSTMConfig
    base_model_prefix = "lstm"

    def __init__(self, config: LSTMConfig):
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.lstm = nn.LSTM(config.d_model, config.d_model, config.n_layers, batch_first=True)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        pass  # PyTorch's own initialisation of each layer, set when the layer was made

    def get_input_embeddings(self) -> nn.Module:
        return self.embed

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def forward(self, input_ids: torch.Tensor, **kwargs) -> CausalLMOutput:
        h, _ = self.lstm(self.embed(input_ids))  # (batch, pos, d_model)
        return CausalLMOutput(logits=self.lm_head(h))  # (batch, pos, vocab)


AutoConfig.register(LSTMConfig.model_type, LSTMConfig, exist_ok=True)
AutoModelForCausalLM.register(LSTMConfig, LSTMForCausalLM, exist_ok=True)


class LSTMSpec(BaseModel):
    """Architecture of an LSTM baseline trained here.

    Parameters
    ----------
    n_layers : int, default 1
    d_model : int, default 128
        Width of the embedding and of the LSTM state.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_layers: int = Field(1, ge=1, le=16)
    d_model: int = Field(128, ge=2)


def build_lstm(spec: LSTMSpec, vocab_size: int, seed: int) -> LSTMForCausalLM:
    """A freshly initialised LSTM language model; the same seed gives the same weights."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return LSTMForCausalLM(LSTMConfig(vocab_size=vocab_size, d_model=spec.d_model, n_layers=spec.n_layers))
