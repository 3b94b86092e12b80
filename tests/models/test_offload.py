"""The causal tools on a model accelerate dispatched with its layers offloaded (``device_map``):
the parameters of an offloaded module are left on the ``meta`` device and loaded for its own
forward only, as on a GPU machine whose model spills onto the CPU. Tools that read weights
(per-head results, direct logit attribution, the identity checks) or make tensors for a
module must give the numbers of the same model on one device, to the bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from accelerate import infer_auto_device_map
from transformers import AutoModelForCausalLM

from iclab.models.capture import capture
from iclab.models.hooks import model_names
from iclab.models.identities import check_identities
from iclab.models.names import act_name
from iclab.models.patch import AblateHeads, patch
from iclab.models.placement import execution_device, module_tensor
from iclab.probes.activation_patching import ActivationPatching
from iclab.probes.contrast import contrast_prompts
from iclab.probes.dla import direct_logit_attribution
from iclab.probes.function_vectors import FunctionVectorPrompts, FunctionVectors
from iclab.probes.logit_lens import logit_lens


def _offloaded(path, tmp_path, share: float):
    """The model at ``path`` dispatched by accelerate's own planner with ``share`` of its weights'
    bytes allowed in CPU memory; the rest goes to the disk (0: every module)."""
    one = AutoModelForCausalLM.from_pretrained(path).eval()
    nbytes = sum(p.numel() * p.element_size() for p in one.parameters())
    plan = infer_auto_device_map(one, max_memory={"cpu": int(share * nbytes)},
                                 no_split_module_classes=one._no_split_modules)
    model = AutoModelForCausalLM.from_pretrained(path, device_map=dict(plan), offload_folder=tmp_path / "offload")
    return one, model.eval(), plan


@pytest.fixture(scope="module", params=["gpt2", "llama", "qwen2"])
def pair(request, tiny_lms, tmp_path_factory):
    one, off, plan = _offloaded(tiny_lms[request.param].path, tmp_path_factory.mktemp("off"), share=0.5)
    assert "disk" in plan.values() and any(p.device.type == "meta" for p in off.parameters())
    return one, off


def _same(a, b):
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_every_activation_and_the_identities_on_an_offloaded_model(pair):
    one, off = pair
    ids = torch.randint(0, one.config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(0))
    names = model_names(one)
    want, got = capture(one, ids, names), capture(off, ids, names)
    for name in names:
        _same(got[name], want[name])
    _same(got.logits, want.logits)
    check_identities(off)  # reads the per-head output weights, offloaded to the disk


def test_patching_a_heads_result_and_ablating_z(pair):
    one, off = pair
    ids = torch.randint(0, one.config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(1))
    for edits in ({act_name("result", 1): lambda r: r * 0.5}, {act_name("z", 1): AblateHeads([0], mode="zero")}):
        _same(patch(off, ids, edits), patch(one, ids, edits))


def test_dla_logit_lens_patching_sweep_and_function_vectors(pair):
    one, off = pair
    ids = torch.randint(0, one.config.vocab_size, (3, 9), generator=torch.Generator().manual_seed(2))
    _same(direct_logit_attribution(off, ids, answer=3, baseline=4).heads,
          direct_logit_attribution(one, ids, answer=3, baseline=4).heads)
    _same(logit_lens(off, ids, pos=-1), logit_lens(one, ids, pos=-1))
    corrupt = ids.clone()
    corrupt[:, 4] = 5
    prompts = contrast_prompts(ids, answer=ids[:, 4], baseline=5, corrupt=corrupt)
    sweep = ActivationPatching(resid_site="resid_pre", head_site="z")
    np.testing.assert_array_equal(sweep(off, prompts).arrays["heads"], sweep(one, prompts).arrays["heads"])
    rng = np.random.default_rng(0)
    xs = rng.integers(10, 30, size=(4, 4))
    ys = xs + 1

    def icl(x, y):
        return [t for pair in zip(x, y) for t in pair][:-1]

    fv = FunctionVectorPrompts([icl(x, y) for x, y in zip(xs, ys)],
                               [icl(x, [*rng.permutation(y[:-1]), y[-1]]) for x, y in zip(xs, ys)],
                               shuffled_answer=ys[:, -1], zero_shot=xs[:, -1:], zero_shot_answer=ys[:, -1])
    probe = FunctionVectors(n_top_heads=2)
    np.testing.assert_array_equal(probe(off, fv).arrays["aie"], probe(one, fv).arrays["aie"])


def test_every_module_on_the_disk(tiny_lms, tmp_path):
    """Even the embedding offloaded: inputs go where accelerate computes, not to "meta"."""
    one, off, plan = _offloaded(tiny_lms["llama"].path, tmp_path, share=0.0)
    assert set(plan.values()) == {"disk"} and all(p.device.type == "meta" for p in off.parameters())
    assert execution_device(off).type == "cpu"
    ids = torch.randint(0, one.config.vocab_size, (2, 7), generator=torch.Generator().manual_seed(3))
    names = [act_name("resid_post", 0), act_name("result", 1), act_name("pattern", 1)]
    want, got = capture(one, ids, names), capture(off, ids, names)
    for name in names:
        _same(got[name], want[name])
    check_identities(off)


def test_module_tensor_reads_the_offload_map_and_refuses_a_bare_placeholder(pair):
    one, off = pair
    name, meta = next((n, m) for n, m in off.named_modules()
                      if isinstance(m, torch.nn.Linear) and m.weight.device.type == "meta")
    _same(module_tensor(meta, "weight"), one.get_submodule(name).weight)
    bare = torch.nn.Linear(2, 2, device="meta")
    with pytest.raises(RuntimeError, match="meta device and no offload map"):
        module_tensor(bare, "weight")
    assert module_tensor(bare, "no_such") is None
