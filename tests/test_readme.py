"""Every ```python block of README.md runs, as written, in order, in one namespace (like a
notebook), so the README cannot rot. Hub names (``"gpt2"``) load a tiny saved GPT-2 of the
same vocabulary size built here: nothing is downloaded."""

from __future__ import annotations

import re

import pytest

from helpers import REPO

BLOCKS = re.findall(r"^```python\n(.*?)^```", (REPO / "README.md").read_text(), flags=re.S | re.M)


@pytest.fixture
def hub(tmp_path_factory, monkeypatch):
    """``load_model(name)`` loads a tiny GPT-2 with GPT-2's vocabulary, whatever the name."""
    import iclab.models.load as load
    from iclab.models.build import ModelSpec, build_model

    path = tmp_path_factory.mktemp("hub") / "gpt2"
    build_model(ModelSpec(family="gpt2", n_layers=2, d_model=32, n_heads=4, max_len=256), 50257, seed=0) \
        .save_pretrained(path)
    real = load.load_model
    monkeypatch.setattr(load, "load_model", lambda name, **kw: real(str(path), **kw))


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


def test_every_python_block_of_the_readme_runs(hub, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    for i, block in enumerate(BLOCKS):
        exec(compile(block, f"README.md, python block {i + 1}", "exec"), namespace)
