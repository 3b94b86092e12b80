import pytest

from iclab.config import TrainConfig, apply_overrides, load_config, parse_overrides, validate
from iclab.errors import ConfigError, UnknownNameError
from iclab.studies.induction_heads import InductionHeadsConfig

STUDY = "induction-heads"


def test_presets_validate():
    for preset in ("cpu", "paper"):
        cfg = load_config(InductionHeadsConfig, STUDY, preset)
        assert cfg.train.steps >= 1 and cfg.layers


def test_override_sets_nested_value():
    cfg = load_config(InductionHeadsConfig, STUDY, "cpu", parse_overrides(["train.steps=500", "train.lr=3e-4"]))
    assert cfg.train.steps == 500
    assert cfg.train.lr == pytest.approx(3e-4)  # YAML 1.1 would read "3e-4" as a string


def test_parse_overrides_types():
    o = parse_overrides(["a=1", "b=0.5", "c=[1, 2]", "d=null", "e=hello", "f=true"])
    assert o == {"a": 1, "b": 0.5, "c": [1, 2], "d": None, "e": "hello", "f": True}
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_overrides(["train.steps"])


def test_unknown_key_names_key_and_allowed():
    with pytest.raises(ConfigError) as e:
        load_config(InductionHeadsConfig, STUDY, "cpu", {"train.stepz": 5})
    msg = str(e.value)
    assert "train.stepz" in msg and "steps" in msg and "batch_size" in msg and "\n" not in msg


def test_bad_value_names_key_value_and_rule():
    with pytest.raises(ConfigError) as e:
        load_config(InductionHeadsConfig, STUDY, "cpu", {"train.steps": -5})
    msg = str(e.value)
    assert "train.steps" in msg and "-5" in msg and "greater than or equal to 1" in msg


def test_wrong_type_refused():
    with pytest.raises(ConfigError, match="train.batch_size"):
        load_config(InductionHeadsConfig, STUDY, "cpu", {"train.batch_size": "many"})


def test_cross_field_rule_refused():
    with pytest.raises(ConfigError, match="max_segment"):
        load_config(InductionHeadsConfig, STUDY, "cpu", {"world.max_segment": 30})


def test_unknown_preset_lists_known():
    with pytest.raises(UnknownNameError) as e:
        load_config(InductionHeadsConfig, STUDY, "laptop")
    assert "cpu" in str(e.value) and "paper" in str(e.value)


def test_override_into_a_value_refused():
    with pytest.raises(ConfigError, match="is a value"):
        apply_overrides({"seed": 0}, {"seed.x": 1})


def test_configs_are_frozen():
    cfg = validate(TrainConfig, {})
    with pytest.raises(Exception):
        cfg.steps = 3
