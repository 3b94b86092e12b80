"""The contract every registered probe keeps (scikit-learn's estimator checks, run on each).

For every probe in ``iclab.probes`` and two model families (GPT-2 and Llama): the same model
and prompts give the same rows and arrays; rows fit the schema and name the probe; no hook
is left on the model; an unknown parameter and every out-of-range value (made from the
probe's declared bounds) are refused with the one config message.

A new probe is added to the registry and to ``EXAMPLES`` below (how to build a small
instance and its prompts for a tiny model); a registered probe without an example fails
:func:`test_every_registered_probe_has_an_example`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from helpers import check_parameter_validation, check_probe_contract
from iclab.models.build import ModelSpec, build_model
from iclab.probes import make_probe, probe_class, probe_names
from iclab.probes.contrast import contrast_prompts
from iclab.probes.decodability import LabelledInputs
from iclab.probes.function_vectors import FunctionVectorPrompts
from iclab.probes.graph_tracing import GraphWalks
from iclab.probes.linear_probe import ProbeTargets
from iclab.probes.task_vectors import PatchingPrompts, task_vectors
from iclab.studies.label_semantics.trained import trained_prompts
from iclab.worlds.bursty_classes import BurstyClasses
from iclab.worlds.ginc import GINCWorld
from iclab.worlds.graph import GraphWorld
from iclab.worlds.icg import ICGWorld
from iclab.worlds.label_map import LabelMapWorld

FAMILIES = ("gpt2", "llama")


def tiny(family: str, vocab: int) -> torch.nn.Module:
    return build_model(ModelSpec(family=family, n_layers=2, d_model=32, n_heads=4, max_len=512), vocab, seed=0).eval()


def repeated(vocab: int = 40, n: int = 8, half: int = 6) -> torch.Tensor:
    r = np.random.default_rng(0).integers(0, vocab, size=(n, half))
    return torch.as_tensor(np.concatenate([r, r], axis=1))  # (n, 2 * half)


def _induction(family, text):
    return make_probe("induction", batch_size=4), tiny(family, 40), repeated()


def _icl(family, text):
    return make_probe("icl", early=3, late=9), tiny(family, 40), repeated()


def _ablation(family, text):
    return (make_probe("ablation", heads=[(1, 0), (1, 2)], icl={"early": 3, "late": 9}, mode="mean"),
            tiny(family, 40), repeated())


def _ictr(family, text):
    world = ICGWorld(arity=4, n_subtopics=3, paragraph_len=8, n_paragraphs=4, gamma=0.3, r_repeat=0.5)
    probe = make_probe("ictr", shots=[1, 2], n_prompts=4, batch_size=8)
    return probe, tiny(family, world.vocab_size), probe.prompts(world, np.random.default_rng(0))


def _ginc(family, text):
    world = GINCWorld(n_symbols=12, n_entities=3, n_properties=4, n_concepts=4, n_pretrain_concepts=2)
    probe = make_probe("ginc", shots=[0, 2], lengths=[3], n_prompts=6, batch_size=4)
    return probe, tiny(family, world.vocab_size), probe.prompts(world, np.random.default_rng(0))


def _classification(family, text):
    world = BurstyClasses(n_classes=64, n_labels=8, n_holdout=4, exemplar_len=2, n_features=16)
    probe = make_probe("classification", n_prompts=6, batch_size=4)
    return probe, tiny(family, world.vocab_size), probe.prompts(world, np.random.default_rng(0))


def _graph(family, text):
    world = GraphWorld(walk_length=24, vocab=24, seed=1)
    walks = GraphWalks(world.prompts(np.random.default_rng(0), 3), world.graph)
    return make_probe("graph", n_contexts=4, window=12, min_present=0.25, batch_size=2), tiny(family, 24), walks


def _td(family, text):
    tokenizer, enc = text
    return (make_probe("td", k=3), tiny(family, len(tokenizer)),
            LabelledInputs(enc.ids, enc.query_positions, enc.tasks))


def _accuracy(family, text):
    tokenizer, enc = text
    return make_probe("accuracy", max_new_tokens=2), tiny(family, len(tokenizer)), enc.select(enc.tasks != "bitwise-null")


def _patching(family, text):
    tokenizer, enc = text
    model = tiny(family, len(tokenizer))
    vectors = {t: v[0] for t, v in task_vectors(model, enc, layers=[1]).items()}
    queries = enc.select(enc.tasks != "bitwise-null")
    return (make_probe("patching", layer=1, max_new_tokens=2, mode="add"), model,
            PatchingPrompts(queries, vectors, "bitwise-null"))


def _linear_probe(family, text):
    tokens = repeated()  # (8, 12)
    index = np.stack(np.meshgrid(np.arange(8), np.arange(12), indexing="ij"), axis=-1).reshape(-1, 2)  # (96, 2)
    targets = {"token": np.eye(40)[tokens.numpy().reshape(-1)], "position": index[:, 1]}
    return make_probe("linear_probe", alpha=0.1, batch_size=4), tiny(family, 40), ProbeTargets(tokens, index, targets)


def _contrast(n: int = 3):
    clean = repeated(n=n)
    corrupt = clean.clone()
    corrupt[:, 5] = (corrupt[:, 5] + 1) % 40  # the token the second copy would repeat at its end
    return contrast_prompts(clean, answer=clean[:, 6], baseline=corrupt[:, 5], corrupt=corrupt, pos=10)


def _function_vectors(family, text):
    r = repeated(n=8)
    prompts = FunctionVectorPrompts(clean=r[:4], shuffled=r[4:], shuffled_answer=r[4:, 0], zero_shot=r[:3, :4],
                                    zero_shot_answer=[1, 2, 3])
    return make_probe("function_vectors", n_top_heads=2, batch_size=2), tiny(family, 40), prompts


def _activation_patching(family, text):
    return make_probe("activation_patching", head_site="result"), tiny(family, 40), _contrast()


def _logit_lens(family, text):
    return make_probe("logit_lens", batch_size=2), tiny(family, 40), _contrast()


def _dla(family, text):
    return make_probe("dla", batch_size=2), tiny(family, 40), _contrast()


def _attention_patterns(family, text):
    return make_probe("attention_patterns", heads=[(0, 1), (1, 3)]), tiny(family, 40), repeated(n=2)


def _label_scoring(family, text):
    world = LabelMapWorld(n_inputs=12, n_classes=2, n_ood_inputs=4, pairs=4)
    p = trained_prompts(world, ["gold", "flipped", "unrelated"], [3], 4, np.random.default_rng(0))[3]  # LabelPrompts
    return make_probe("label_scoring", batch_size=5), tiny(family, world.vocab_size), p


#: probe name -> (family, (tokenizer, encoded bitwise prompts)) -> (probe, model, prompts)
EXAMPLES: dict[str, Callable] = {"induction": _induction, "icl": _icl, "ablation": _ablation, "ictr": _ictr,
                                 "ginc": _ginc, "graph": _graph, "td": _td, "accuracy": _accuracy, "patching": _patching,
                                 "function_vectors": _function_vectors, "activation_patching": _activation_patching,
                                 "logit_lens": _logit_lens, "dla": _dla, "attention_patterns": _attention_patterns,
                                 "linear_probe": _linear_probe,
                                 "label_scoring": _label_scoring,
                                 "classification": _classification}


def test_every_registered_probe_has_an_example():
    missing = sorted(set(probe_names()) - set(EXAMPLES))
    assert not missing, f"add an example of probe(s) {missing} to EXAMPLES so the shared checks run on them"
    print(f"\n{len(probe_names())} registered probes: {', '.join(probe_names())}")


@pytest.mark.parametrize("name", probe_names())
def test_registry_name_is_the_class_name(name):
    cls = probe_class(name)
    assert cls.name == name
    assert getattr(__import__("iclab.probes", fromlist=[cls.__name__]), cls.__name__) is cls


def test_probes_are_imported_when_asked_for():
    # a fresh interpreter: the induction study must not pay for scikit-learn (graph, td probes)
    import subprocess
    import sys
    code = ("import sys, iclab.probes as p; p.probe_class('induction'); "
            "print('sklearn' in sys.modules, 'iclab.probes.graph_tracing' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", probe_names())
def test_probe_keeps_the_contract(name, family, char_tokenizer, bitwise_enc):
    probe, model, prompts = EXAMPLES[name](family, (char_tokenizer, bitwise_enc))
    assert type(probe) is probe_class(name) and probe.name == name
    check_probe_contract(probe, model, prompts)


@pytest.mark.parametrize("name", probe_names())
def test_probe_parameters_are_validated_with_the_config_message(name, char_tokenizer, bitwise_enc):
    probe, _, _ = EXAMPLES[name]("llama", (char_tokenizer, bitwise_enc))
    check_parameter_validation(type(probe), probe.model_dump())


def test_the_contract_check_catches_a_probe_that_breaks_it():
    """A probe that is not deterministic fails the shared check (the check can fail)."""
    from typing import ClassVar

    from iclab.probes.base import Probe
    from iclab.probes.result import ProbeResult
    from iclab.rows import Row

    class Noisy(Probe):
        name: ClassVar[str] = "noisy"

        def __call__(self, model, prompts) -> ProbeResult:
            return ProbeResult([Row(self.name, "x", float(torch.rand(())))])

    with pytest.raises(AssertionError, match="rows differ"):
        check_probe_contract(Noisy(), tiny("llama", 40), repeated())
