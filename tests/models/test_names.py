"""The activation-name contract (``iclab.models.names``), as TransformerLens tests its hook names.

The list of names is written out here by hand, and checked against the table in the
module docstring, so that changing a name is a visible change to this file.
"""

from __future__ import annotations

import pytest

from iclab.errors import ConfigError
from iclab.models.names import (GLOBAL_SITES, LAYER_SITES, READ_ONLY, ParsedName, act_name, all_names, parse_name,
                                select_names)

LAYER_ZERO = [
    "blocks.0.hook_resid_pre",
    "blocks.0.ln1.hook_scale",
    "blocks.0.attn.hook_q",
    "blocks.0.attn.hook_k",
    "blocks.0.attn.hook_v",
    "blocks.0.attn.hook_pattern",
    "blocks.0.attn.hook_z",
    "blocks.0.attn.hook_result",
    "blocks.0.hook_attn_out",
    "blocks.0.hook_resid_mid",
    "blocks.0.ln2.hook_scale",
    "blocks.0.mlp.hook_pre",
    "blocks.0.mlp.hook_post",
    "blocks.0.hook_mlp_out",
    "blocks.0.hook_resid_post",
]
EXPECTED_TWO_LAYERS = [
    "hook_embed",
    "hook_pos_embed",
    *LAYER_ZERO,
    *(n.replace("blocks.0.", "blocks.1.") for n in LAYER_ZERO),
    "ln_final.hook_scale",
    "ln_final.hook_normalized",
]


def test_all_names_is_exactly_the_documented_list():
    assert all_names(2) == EXPECTED_TWO_LAYERS
    assert len(EXPECTED_TWO_LAYERS) == 4 + 2 * 15 and "blocks.1.attn.hook_result" in EXPECTED_TWO_LAYERS


def test_all_names_of_one_and_three_layers():
    assert all_names(1) == [n for n in EXPECTED_TWO_LAYERS if not n.startswith("blocks.1.")]
    three = all_names(3)
    assert len(three) == 4 + 15 * 3 and len(set(three)) == len(three)
    assert three[:17] == EXPECTED_TWO_LAYERS[:17] and three[-1] == "ln_final.hook_normalized"
    assert [n.replace("blocks.2.", "blocks.1.") for n in three[32:47]] == EXPECTED_TWO_LAYERS[17:32]


@pytest.mark.parametrize("n_layers", [1, 2, 5])
def test_all_names_match_the_docstring_table(documented_names, n_layers):
    documented = {n for row in documented_names for n in row.names(n_layers)}
    assert set(all_names(n_layers)) == documented


def test_read_only_sites_are_the_documented_ones(documented_names):
    not_patchable = {parse_name(row.names(1)[0]).site for row in documented_names if not row.patchable}
    assert not_patchable == set(READ_ONLY) == {"resid_mid", "ln1_scale", "ln2_scale", "scale"}


@pytest.mark.parametrize("name", all_names(4))
def test_parse_then_build_is_the_identity(name):
    site = parse_name(name)
    assert isinstance(site, ParsedName)
    assert act_name(site.site, site.layer) == name
    assert site.name == name


@pytest.mark.parametrize("site", [*LAYER_SITES, *GLOBAL_SITES])
def test_build_then_parse_is_the_identity(site):
    layers = [None] if site in GLOBAL_SITES else [0, 1, 7, 123]
    for layer in layers:
        assert parse_name(act_name(site, layer)) == ParsedName(site, layer)


def test_examples_from_the_docstrings():
    assert act_name("resid_post", 3) == "blocks.3.hook_resid_post"
    assert act_name("embed") == "hook_embed"
    assert act_name("normalized") == "ln_final.hook_normalized"
    assert act_name("pattern", 0) == "blocks.0.attn.hook_pattern"
    assert act_name("z", 11) == "blocks.11.attn.hook_z"
    assert parse_name("blocks.12.hook_mlp_out") == ParsedName("mlp_out", 12)
    assert act_name("q", 2) == "blocks.2.attn.hook_q" and act_name("result", 0) == "blocks.0.attn.hook_result"
    assert act_name("mlp_pre", 1) == "blocks.1.mlp.hook_pre" and act_name("mlp_post", 1) == "blocks.1.mlp.hook_post"
    assert act_name("ln1_scale", 3) == "blocks.3.ln1.hook_scale" and act_name("scale") == "ln_final.hook_scale"
    assert act_name("pos_embed") == "hook_pos_embed"


@pytest.mark.parametrize("bad", [
    "blocks.0.hook_resid",          # unknown site
    "blocks.0.attn.hook_rot_q",     # a site TransformerLens has and we do not (our hook_q is after rotation)
    "blocks.0.hook_q",              # q lives under attn.
    "blocks.0.mlp.hook_pre_linear", # TransformerLens's gated-MLP site
    "blocks.-1.hook_resid_post",    # negative layer
    "blocks.x.hook_resid_post",     # layer not a number
    "blocks.0.hook_pattern",        # pattern lives under attn.
    "blocks.0.attn.hook_resid_post",
    "hook_resid_post",              # layer site without a layer
    "blocks.0.hook_embed",          # global site with a layer
    "resid_post",                   # a site, not a name
    "k6",                           # TransformerLens shorthand
    " hook_embed",
    "hook_embed ",
    "transformer.h.0",              # a module path
    "",
])
def test_bad_names_are_rejected_with_the_allowed_forms(bad):
    with pytest.raises(ConfigError) as e:
        parse_name(bad)
    msg = str(e.value)
    assert repr(bad) in msg
    for form in ("hook_embed", "ln_final.hook_normalized", "blocks.{l}", "hook_resid_post",
                 "attn.hook_pattern", "attn.hook_z", "hook_resid_mid", "attn.hook_q", "attn.hook_result",
                 "mlp.hook_pre", "ln1.hook_scale", "hook_pos_embed", "ln_final.hook_scale"):
        assert form in msg, f"{form!r} missing from: {msg}"
    assert "\n" not in msg


@pytest.mark.parametrize("bad", ["blocks.01.hook_resid_post", "blocks.\u0663.hook_resid_post"])
def test_only_the_canonical_spelling_of_a_name_parses(bad):
    """One string per activation: a cache is keyed by the name as given, so a second spelling
    of the same activation ("blocks.01…", or a non-ASCII digit) would be captured under a
    key that ``act_name`` never builds."""
    with pytest.raises(ConfigError):
        parse_name(bad)


@pytest.mark.parametrize("bad_site", ["resid", "rot_q", "hook_resid_post", "blocks.0.hook_resid_post", "Embed", ""])
def test_unknown_sites_are_rejected_listing_the_known_ones(bad_site):
    with pytest.raises(ConfigError) as e:
        act_name(bad_site, 0)
    msg = str(e.value)
    assert repr(bad_site) in msg
    for site in [*GLOBAL_SITES, *LAYER_SITES]:
        assert site in msg


def test_layer_sites_need_a_non_negative_layer():
    with pytest.raises(ConfigError, match="resid_post.*layer"):
        act_name("resid_post")
    with pytest.raises(ConfigError, match="-1"):
        act_name("z", -1)


def test_global_sites_take_no_layer():
    with pytest.raises(ConfigError, match="embed.*no layer"):
        act_name("embed", 0)
    with pytest.raises(ConfigError, match="normalized"):
        act_name("normalized", 2)


def test_config_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse_name("nope")


# ---------------------------------------------------------------- names filters


def test_a_glob_selects_names_in_forward_order():
    available = all_names(3)
    assert select_names("blocks.*.hook_resid_post", available) == [f"blocks.{l}.hook_resid_post" for l in range(3)]
    assert select_names("blocks.1.attn.hook_?", available) == [f"blocks.1.attn.hook_{s}" for s in "qkvz"]
    assert select_names(["hook_embed", "blocks.[02].hook_mlp_out"], available) == [
        "hook_embed", "blocks.0.hook_mlp_out", "blocks.2.hook_mlp_out"]


def test_exact_names_are_kept_as_given_and_duplicates_dropped():
    assert select_names(["blocks.7.hook_resid_post", "hook_embed", "hook_embed"], all_names(1)) == [
        "blocks.7.hook_resid_post", "hook_embed"]  # a layer out of range is refused by the model, not here


def test_a_predicate_filters_the_available_names():
    got = select_names(lambda n: n.endswith("hook_scale"), all_names(2))
    assert got == ["blocks.0.ln1.hook_scale", "blocks.0.ln2.hook_scale", "blocks.1.ln1.hook_scale",
                   "blocks.1.ln2.hook_scale", "ln_final.hook_scale"]


@pytest.mark.parametrize("bad", ["blocks.*.hook_nothing", lambda n: False, ["hook_embed", "x*"]])
def test_a_filter_that_selects_nothing_is_refused_listing_the_names(bad):
    with pytest.raises(ConfigError, match="available: hook_embed"):
        select_names(bad, all_names(1))
