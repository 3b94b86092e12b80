"""Loading a pretrained model for a study: ``model.device_map`` (accelerate; all on the CPU where
there is no GPU) and ``model.dtype``, validated in every study that loads one."""

from __future__ import annotations

import pytest
import torch

import iclab
from iclab.errors import ConfigError
from iclab.models.load import LoadSettings, load_model
from iclab.models.memory import pretrained_footprint
from iclab.studies import get_study


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([[1, 5, 9, 2, 7]])).logits.float()


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2"])
def test_device_map_auto_places_every_layer_on_the_cpu_and_gives_the_same_logits(tiny_lms, family):
    tiny = tiny_lms[family]
    model, _ = load_model(str(tiny.path), settings=LoadSettings(device_map="auto"), check=True)
    if not torch.cuda.is_available():  # accelerate's map is one device: it moves the model there, no hooks
        assert all(p.device.type == "cpu" for p in model.parameters())
    assert not model.training and next(model.parameters()).dtype == LoadSettings().torch_dtype(
        "cuda" if torch.cuda.is_available() else "cpu")
    one_device, _ = load_model(str(tiny.path), device="cpu", dtype=next(model.parameters()).dtype)
    torch.testing.assert_close(_logits(model).cpu(), _logits(one_device))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_dtype_choice_loads_the_weights_in_that_dtype(tiny_lms, dtype):
    tiny = tiny_lms["llama"]
    model, _ = load_model(str(tiny.path), device="cpu", settings=LoadSettings(dtype=dtype))
    assert {p.dtype for p in model.parameters()} == {getattr(torch, dtype)}
    logits = _logits(model)  # a forward pass runs in that dtype on the CPU
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(logits, _logits(tiny.model), atol=0.1, rtol=0.05)


def test_device_and_device_map_together_are_refused(tiny_lms):
    with pytest.raises(ValueError, match="device_map"):
        load_model(str(tiny_lms["gpt2"].path), device="cpu", settings=LoadSettings(device_map="auto"))


STUDIES = ["graph-tracing", "induction-heads", "bayesian-icl", "task-vectors", "icg-generalization",
           "label-semantics", "demo-selection"]


@pytest.mark.parametrize("study", STUDIES)
def test_every_study_takes_and_validates_the_load_keys(study):
    cfg = get_study(study).load_config("cpu", {"model.device_map": "auto", "model.dtype": "bfloat16"})
    assert cfg.model.device_map == "auto" and cfg.model.torch_dtype("cpu") == torch.bfloat16
    with pytest.raises(ConfigError, match=r"model\.device_map = 'balanced'.*'auto'"):
        get_study(study).load_config("cpu", {"model.device_map": "balanced"})
    with pytest.raises(ConfigError, match=r"model\.dtype = 'int8'.*'auto', 'float32', 'bfloat16' or 'float16'"):
        get_study(study).load_config("cpu", {"model.dtype": "int8"})


def test_regression_icl_refuses_the_load_keys():
    with pytest.raises(ConfigError, match="model.device_map = 'auto'.*vector models"):
        get_study("regression-icl").load_config("cpu", {"model.device_map": "auto"})


def test_device_map_auto_skips_the_one_device_memory_check(tiny_lms):
    path = str(tiny_lms["gpt2"].path)
    assert pretrained_footprint(path, "cpu", LoadSettings()).total > 0
    assert pretrained_footprint(path, "cpu", LoadSettings(device_map="auto")) is None


def test_a_study_loads_its_pretrained_model_with_the_settings(word_lm_dir, tmp_path, monkeypatch):
    import sys

    measure = sys.modules["iclab.studies.labelled_data"]  # where both text studies load their models
    seen = []

    def spy(*args, **kwargs):
        model, tok = load_model(*args, **kwargs)
        seen.append((kwargs["settings"].device_map, next(model.parameters()).dtype))
        return model, tok

    monkeypatch.setattr(measure, "load_model", spy)
    over = {"data.tasks": ["sentiment"], "probe.shots": [2], "probe.n_queries": 3, "probe.n_draws": 1,
            "probe.conditions": ["gold"], "model.device_map": "auto", "model.dtype": "bfloat16"}
    run = iclab.run("label-semantics", overrides=over, model=str(word_lm_dir), out=tmp_path)
    assert run.meta["status"] == "done"
    assert seen == [("auto", torch.bfloat16)]


def test_the_weights_estimate_is_at_the_dtype_they_are_loaded_in(tiny_lms, tmp_path):
    from transformers import AutoModelForCausalLM

    half = tmp_path / "fp16"
    AutoModelForCausalLM.from_pretrained(str(tiny_lms["gpt2"].path)).to(torch.float16).save_pretrained(half)
    n = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(str(half)).parameters())
    on_disk = sum(p.stat().st_size for p in half.glob("*.safetensors"))
    as_float32 = pretrained_footprint(str(half), "cpu", LoadSettings()).total  # "auto": float32 on the CPU
    as_float16 = pretrained_footprint(str(half), "cpu", LoadSettings(dtype="float16")).total
    assert as_float16 <= on_disk < as_float32
    assert as_float32 == 2 * as_float16 >= 4 * n  # tied or buffered tensors may add to the parameters


def test_max_memory_spills_layers_to_the_disk_and_the_tools_still_agree(tiny_lms):
    """With the CPU allowed 1 kB, accelerate leaves every layer in the checkpoint's files on the
    disk (parameters on "meta"); the logits, a head's result and the identity checks are those
    of the model on one device."""
    from iclab.models.capture import capture
    from iclab.models.names import act_name

    tiny = tiny_lms["qwen2"]
    settings = LoadSettings(device_map="auto", max_memory={"cpu": 1000})
    model, _ = load_model(str(tiny.path), settings=settings, check=True)
    assert {p.device.type for p in model.parameters()} == {"meta"}
    torch.testing.assert_close(_logits(model), _logits(tiny.model), atol=0, rtol=0)
    ids = torch.tensor([[1, 5, 9, 2, 7]])
    names = [act_name("result", 1), act_name("pattern", 0)]
    got, want = capture(model, ids, names), capture(tiny.model, ids, names)
    for name in names:
        torch.testing.assert_close(got[name], want[name], atol=0, rtol=0)


@pytest.mark.parametrize(("over", "message"), [
    ({"model.max_memory": {"cpu": "1GiB"}}, r"model: max_memory is accelerate's.*model\.device_map=auto"),
    ({"model.device_map": "auto", "model.max_memory": {"gpu0": "1GiB"}}, r"model\.max_memory: device 'gpu0'"),
    ({"model.device_map": "auto", "model.max_memory": {"0": "lots"}}, r"0: 'lots' is not an amount"),
    ({"model.device_map": "auto", "model.max_memory": {"cpu": -5}}, r"cpu: -5 bytes is negative"),
])
def test_max_memory_is_validated_with_one_line_naming_the_key(over, message):
    with pytest.raises(ConfigError, match=message):
        get_study("label-semantics").load_config("cpu", over)


def test_max_memory_reaches_accelerate_with_gpu_indices_as_integers():
    cfg = get_study("task-vectors").load_config("cpu", {"model.device_map": "auto",
                                                        "model.max_memory": {"0": "70GiB", "cpu": 1000}})
    assert cfg.model.placement() == {"device_map": "auto", "max_memory": {0: "70GiB", "cpu": 1000}}
    assert LoadSettings().placement() == {}
