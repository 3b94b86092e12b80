"""Shared helpers: the command line in a subprocess, and the checks every probe and world pass."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import annotated_types
import numpy as np

REPO = Path(__file__).resolve().parents[1]
ICLAB = [sys.executable, "-m", "iclab.cli"]

@contextmanager
def one_thread() -> Iterator[None]:
    """One torch thread inside the block: the thread count changes the order of float sums, and the
    science checks' numbers were measured with one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# A few seconds of training: enough to exercise every step of the study.
TINY = ["--set", "layers=[2]", "--set", "model.d_model=32", "--set", "train.steps=60",
        "--set", "train.eval_every=20", "--set", "train.ckpt_every=20", "--set", "probe.n_prompts=16",
        "--set", "train.warmup=5"]


def check_probe_contract(probe, model, prompts) -> None:
    """The checks every probe passes: the same model and prompts give the same rows and
    arrays, rows fit the schema, and no hook is left on the model."""
    from iclab.models.hooks import hook_count
    from iclab.rows import ROW_COLUMNS, Row

    before = hook_count(model)
    a, b = probe(model, prompts), probe(model, prompts)
    assert hook_count(model) == before, f"{type(probe).__name__} left hooks on the model"
    assert a.rows and a.rows == b.rows, f"{type(probe).__name__}: rows differ between two calls"
    for r in a.rows:
        assert isinstance(r, Row) and r.probe == probe.name and isinstance(r.value, float), r
        assert set(vars(r)) == set(ROW_COLUMNS)
    assert set(a.arrays) == set(b.arrays)
    for key, arr in a.arrays.items():
        np.testing.assert_array_equal(arr, b.arrays[key])


def out_of_range_values(cls, valid: dict) -> list[tuple[str, object]]:
    """(field, value) pairs that break a numeric bound declared on ``cls``'s pydantic fields
    (``Field(ge=..., gt=..., le=..., lt=...)``), one per bound: the constraints are data, so the
    bad values are made from them (scikit-learn's ``check_param_validation``). ``valid`` holds
    valid values for the other fields."""
    out = []
    for name, info in cls.model_fields.items():
        for m in info.metadata:
            if isinstance(m, annotated_types.Ge):
                out.append((name, m.ge - 1))
            elif isinstance(m, annotated_types.Gt):
                out.append((name, m.gt - (1 if isinstance(m.gt, int) else 1e-3)))
            elif isinstance(m, annotated_types.Le):
                out.append((name, m.le + 1))
            elif isinstance(m, annotated_types.Lt):
                out.append((name, m.lt + (1 if isinstance(m.lt, int) else 1e-3)))
    return out


def check_parameter_validation(cls, valid: dict) -> int:
    """Every parameter of ``cls`` refuses an unknown key and each out-of-range value with the one
    config message (``iclab.config.validate``): the key, the value, what is allowed, one line.
    Returns how many bad values were tried."""
    import pytest

    from iclab.config import validate
    from iclab.errors import ConfigError

    cls.model_validate(valid)  # the valid parameters pass
    with pytest.raises(ConfigError, match="unknown key 'not_a_parameter'"):
        validate(cls, {**valid, "not_a_parameter": 1})
    bad = out_of_range_values(cls, valid)
    for key, value in bad:
        with pytest.raises(ConfigError) as e:
            validate(cls, {**valid, key: value}, f"{cls.__name__}")
        msg = str(e.value)
        assert f"{key} = {value!r}" in msg and "\n" not in msg, msg
    return len(bad)


def iclab(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "ICLAB_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([*ICLAB, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def check_report_rebuilds(run_dir: Path) -> None:
    """``iclab report`` rebuilds the same report (text, tables, numbers) and byte-identical figures
    from the stored run alone: models and checkpoints deleted, every forward pass refused."""
    import shutil
    from unittest import mock

    import torch

    import iclab

    run_dir = Path(run_dir)
    report = (run_dir / "report.json").read_text()
    figures = {p.name: p.read_bytes() for p in (run_dir / "figures").glob("*.png")}
    assert figures, f"{run_dir} has no figures"
    for d in ("models", "checkpoints", "figures"):
        shutil.rmtree(run_dir / d, ignore_errors=True)
    for f in ("report.json", "report.html"):
        (run_dir / f).unlink()

    def no_forward(*args, **kwargs):
        raise AssertionError("a report ran a model")

    with mock.patch.object(torch.nn.Module, "__call__", no_forward):
        iclab.report(run_dir)
    assert (run_dir / "report.json").read_text() == report  # as text: NaN cells compare equal
    again = {p.name: p.read_bytes() for p in (run_dir / "figures").glob("*.png")}
    assert again.keys() == figures.keys()
    assert [k for k in figures if again[k] != figures[k]] == [], "figures differ after the rebuild"
    assert (run_dir / "report.html").is_file()


# ---------------------------------------------------------------- a model with one head built to copy

COPY_VOCAB, COPY_POSITIONS = 8, 16


def copy_head_model(layer: int = 1, head: int = 2, offset: int = 2, noise: float = 0.02, seed: int = 0):
    """A 2-layer GPT-2 (width 64, 4 heads of 16) in which head ``head`` of ``layer`` attends from
    every position ``i >= offset`` to ``i - offset`` and copies that token into the logits.

    The residual stream has signed one-hot blocks (each with its mirror, so that every vector
    has mean 0 and LayerNorm only rescales): token ``t`` at dims ``t`` and ``8 + t``, position
    ``p`` at ``16 + p`` and ``32 + p``, and an output block at ``48 + t`` / ``56 + t`` that
    the unembedding reads. The built head's query reads position ``p`` and asks for key
    position ``p - offset``; its value reads the token; its output writes the token into the
    output block. Every other weight is ``noise`` times a standard normal (so the other heads
    and the MLPs do something, a little), norms are identity, biases zero.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    V, P, D, H = COPY_VOCAB, COPY_POSITIONS, 64, 4
    dh = D // H
    config = GPT2Config(vocab_size=V, n_positions=P, n_embd=D, n_layer=2, n_head=H, n_inner=32, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=False, bos_token_id=None,
                        eos_token_id=None)
    g = torch.Generator().manual_seed(seed)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.copy_(noise * torch.randn(p.shape, generator=g))
        t = model.transformer
        t.wte.weight.zero_()
        t.wpe.weight.zero_()
        for tok in range(V):
            t.wte.weight[tok, tok], t.wte.weight[tok, V + tok] = 1.0, -1.0
        for pos in range(P):
            t.wpe.weight[pos, 2 * V + pos], t.wpe.weight[pos, 2 * V + P + pos] = 1.0, -1.0
        attn = t.h[layer].attn
        w = attn.c_attn.weight  # (D, 3 * D), Conv1D: in x out; q | k | v
        cols = slice(head * dh, (head + 1) * dh)
        for block in range(3):
            w[:, block * D:(block + 1) * D][:, cols] = 0.0
        for pos in range(P):
            if pos >= offset:
                w[2 * V + pos, head * dh + (pos - offset)] = 3.0  # q_i = e_{i - offset}
            w[2 * V + pos, D + head * dh + pos] = 3.0  # k_j = e_j
        for tok in range(V):
            w[tok, 2 * D + head * dh + tok] = 1.0  # v_j = e_{token_j}
        o = attn.c_proj.weight  # (D, D), in x out
        o[cols, :] = 0.0
        for tok in range(V):
            o[head * dh + tok, 2 * V + 2 * P + tok], o[head * dh + tok, 3 * V + 2 * P + tok] = 1.0, -1.0
        model.lm_head.weight.zero_()
        for tok in range(V):
            model.lm_head.weight[tok, 2 * V + 2 * P + tok] = 1.0
    return model


def copy_task(n: int = 8, length: int = 10, offset: int = 2, answer: int = 5, seed: int = 0):
    """Prompts for :func:`copy_head_model`: random tokens (none equal to ``answer``) with ``answer``
    at ``length - 1 - offset`` (``clean``), and the same with another token there (``corrupt``),
    so the built head reads ``answer`` in the clean prompts only; and that other token (n,)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    others = torch.tensor([t for t in range(COPY_VOCAB) if t != answer])
    clean = others[torch.randint(0, len(others), (n, length), generator=g)]  # (n, length)
    corrupt = clean.clone()
    clean[:, length - 1 - offset] = answer
    replaced = others[torch.randint(0, len(others), (n,), generator=g)]  # (n,)
    corrupt[:, length - 1 - offset] = replaced
    return clean, corrupt, replaced
