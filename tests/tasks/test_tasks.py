"""Natural tasks (bitwise, POS), the CoNLL-U reader and k-shot prompts: fast, model-free."""

from __future__ import annotations

import numpy as np
import pytest

from iclab.errors import ConfigError, UnknownNameError
from iclab.tasks import (OPS, TARGETS, BitwiseTask, Example, NaturalTask, PosTask, build_prompt,
                         build_prompts, format_prompt, get_task, parse_conllu, read_conllu,
                         shipped_sentences, task_names)
from iclab.tasks.pos import first_word

PY_OPS = {
    "and": lambda a, b: a & b,
    "nand": lambda a, b: ~(a & b),
    "or": lambda a, b: a | b,
    "nor": lambda a, b: ~(a | b),
    "xor": lambda a, b: a ^ b,
    "xnor": lambda a, b: ~(a ^ b),
}


def conllu(*sentences: list[str]) -> str:
    """CoNLL-U text from sentences given as rows of 'ID FORM LEMMA UPOS' (space-separated)."""
    out = []
    for rows in sentences:
        for row in rows:
            if row.startswith("#"):
                out.append(row)
                continue
            wid, form, lemma, upos = row.split()
            out.append("\t".join([wid, form, lemma, upos, "_", "_", "_", "_", "_", "_"]))
        out.append("")
    return "\n".join(out) + "\n"


# --- registry -----------------------------------------------------------------------------

def test_registry_lists_both_families_with_null_last():
    assert task_names("bitwise") == [f"bitwise-{op}" for op in (*OPS, "null")]
    assert task_names("pos") == [f"pos-{t}" for t in (*TARGETS, "null")]
    assert task_names() == task_names("bitwise") + task_names("pos")


@pytest.mark.parametrize("name", task_names())
def test_every_task_follows_the_protocol(name):
    task = get_task(name)
    assert isinstance(task, NaturalTask) and task.name == name
    assert task.is_null == name.endswith("-null")
    assert task.null().is_null and task.null().family == task.family
    ex = task.examples(np.random.default_rng(0), 5)
    assert len(ex) == 5 and all(isinstance(e.input, str) and e.output for e in ex)
    assert ex == task.examples(np.random.default_rng(0), 5)


def test_unknown_task_name_lists_the_known_ones():
    with pytest.raises(UnknownNameError) as e:
        get_task("bitwise-implies")
    assert "bitwise-implies" in str(e.value)
    assert all(name in str(e.value) for name in task_names())
    with pytest.raises(UnknownNameError, match="bitwise, pos"):
        task_names("arithmetic")


def test_bad_parameters_name_what_is_allowed():
    with pytest.raises(ConfigError, match="allowed: and, nand"):
        BitwiseTask("implies")
    with pytest.raises(ConfigError, match="allowed: noun, adjective"):
        PosTask("determiner")
    with pytest.raises(ConfigError, match="only pos-"):
        get_task("bitwise-xor", conllu="x.conllu")


# --- bitwise --------------------------------------------------------------------------------

@pytest.mark.parametrize("op", OPS)
def test_bitwise_answers_match_python_operators(op):
    for ex in BitwiseTask(op).examples(np.random.default_rng(1), 200):
        a, b = ex.input.split(" ")
        assert len(a) == len(b) == 5 and set(a + b) <= {"0", "1"}
        expected = PY_OPS[op](int(a, 2), int(b, 2)) & 0b11111
        assert ex.output == format(expected, "05b")


def test_bitwise_null_outputs_are_random_bits_not_tied_to_inputs():
    ex = BitwiseTask("null").examples(np.random.default_rng(2), 3000)
    assert all(len(e.output) == 5 and set(e.output) <= {"0", "1"} for e in ex)
    for op in OPS:  # a uniform guess matches any fixed map with probability 1/32
        hits = np.mean([e.output == format(PY_OPS[op](*(int(x, 2) for x in e.input.split())) & 31, "05b")
                        for e in ex])
        assert hits < 0.06, op
    same_input = {}
    for e in ex:
        same_input.setdefault(e.input, set()).add(e.output)
    assert any(len(outs) > 1 for outs in same_input.values())
    assert len({e.output for e in ex}) == 32


# --- POS ------------------------------------------------------------------------------------

HAND = conllu(
    ["# text = She quickly read an old book in Rome.",
     "1 She she PRON", "2 quickly quickly ADV", "3 read read VERB", "4 an a DET",
     "5 old old ADJ", "6 book book NOUN", "7 in in ADP", "8 Rome Rome PROPN", "9 . . PUNCT"],
    ["# text = The soup is very hot.",
     "1 The the DET", "2 soup soup NOUN", "3 is be AUX", "4 very very ADV", "5 hot hot ADJ",
     "6 . . PUNCT"],
)


def test_pos_answers_on_hand_written_sentences():
    she, soup = parse_conllu(HAND)
    expected = {"noun": "book", "adjective": "old", "verb": "read", "adverb": "quickly",
                "preposition": "in", "pronoun": "She"}
    assert {t: first_word(she, t) for t in TARGETS} == expected
    assert first_word(soup, "verb") is None  # "is" is AUX, not VERB
    assert (first_word(soup, "noun"), first_word(soup, "adverb")) == ("soup", "very")


def test_pos_uses_only_sentences_with_the_tag(tmp_path):
    path = tmp_path / "hand.conllu"
    path.write_text(HAND)
    verb = get_task("pos-verb", conllu=path)
    assert [s.text for s in verb.sentences] == ["She quickly read an old book in Rome."]
    assert {e.output for e in verb.examples(np.random.default_rng(0), 10)} == {"read"}
    with pytest.raises(ConfigError, match="no sentence of '.*in.conllu' has a word tagged NOUN/PROPN"):
        PosTask("noun", conllu=_write(tmp_path, conllu(["1 . . PUNCT"])))


def test_pos_null_answers_a_random_word_of_the_sentence():
    words = {s.text: [w.form for w in s.words if w.upos != "PUNCT"] for s in shipped_sentences()}
    ex = get_task("pos-null").examples(np.random.default_rng(3), 300)
    assert all(e.output in words[e.input] for e in ex)
    firsts = [words[e.input].index(e.output) == 0 for e in ex]
    assert 0.05 < np.mean(firsts) < 0.3  # about 1/7.6 words; not always the first word


def test_pos_examples_are_distinct_sentences_while_possible():
    ex = get_task("pos-pronoun").examples(np.random.default_rng(4), 11)
    assert len({e.input for e in ex}) == 11


def test_shipped_sentences_parse_and_each_tag_is_in_60_sentences():
    sentences = shipped_sentences()
    assert len(sentences) >= 150
    assert len({s.text for s in sentences}) == len(sentences)
    for s in sentences:
        words = [w for w in s.words if w.upos != "PUNCT"]
        assert 5 <= len(words) <= 14, s.text
        rebuilt = "".join(w.form + (" " if w.space_after else "") for w in s.words).strip()
        assert rebuilt == s.text and all(w.lemma for w in s.words)
    for t in TARGETS:
        assert sum(first_word(s, t) is not None for s in sentences) >= 60, t
        assert all(e.output in e.input for e in get_task(f"pos-{t}").examples(np.random.default_rng(5), 50))


# --- CoNLL-U reader -------------------------------------------------------------------------

def test_conllu_reader_skips_comments_multiword_tokens_and_empty_nodes(tmp_path):
    text = conllu(
        ["# sent_id = s1", "# newpar", "1-2 Don't _ _", "1 Do do AUX", "2 n't not PART",
         "3 stop stop VERB", "3.1 go go VERB", "4 now now ADV", "5 ! ! PUNCT"],
        ["1 I I PRON", "2 sleep sleep VERB"],
    )
    (s1, s2) = read_conllu(_write(tmp_path, text))
    assert [w.form for w in s1.words] == ["Do", "n't", "stop", "now", "!"]
    assert [w.upos for w in s1.words] == ["AUX", "PART", "VERB", "ADV", "PUNCT"]
    assert s1.sent_id == "s1" and s1.text == "Don't stop now !"  # rebuilt: no # text
    assert s2.text == "I sleep" and s2.sent_id is None


@pytest.mark.parametrize("bad, problem", [
    ("1\tcat\tcat\tNOUN\t_\t_\t_\t_\t_", "expected 10 tab-separated columns, got 9"),
    ("1 cat cat NOUN _ _ _ _ _ _", "expected 10 tab-separated columns, got 1"),
    ("x\tcat\tcat\tNOUN\t_\t_\t_\t_\t_\t_", "ID 'x' is not a word number"),
    ("3\tcat\tcat\tNOUN\t_\t_\t_\t_\t_\t_", "word ID 3 out of order; expected 2"),
    ("2\tcat\tcat\tNOUNS\t_\t_\t_\t_\t_\t_", "UPOS 'NOUNS' is not a Universal POS tag"),
])
def test_conllu_reader_names_file_and_line_of_a_malformed_row(tmp_path, bad, problem):
    path = _write(tmp_path, conllu(["# text = A cat", "1 A a DET"])[:-1] + bad + "\n\n")
    with pytest.raises(ConfigError) as e:
        read_conllu(path)
    assert str(e.value).startswith(f"{path}, line 3: {problem}")


def test_conllu_reader_refuses_missing_and_empty_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read CoNLL-U file"):
        read_conllu(tmp_path / "missing.conllu")
    with pytest.raises(ConfigError, match="no sentences found"):
        read_conllu(_write(tmp_path, "# only a comment\n\n"))


def _write(tmp_path, text):
    path = tmp_path / "in.conllu"
    path.write_text(text)
    return path


# --- prompts --------------------------------------------------------------------------------

class Fixed:
    """A task that returns the examples it was given, in order."""

    name, family, is_null, instruction = "fixed", "fixed", False, "Copy the input."

    def __init__(self, examples):
        self._examples = examples

    def examples(self, rng, n):
        return self._examples[:n]


def test_prompt_format_exact_string():
    task = Fixed([Example("01101 10110", "11011"), Example("00011 00001", "00010"),
                  Example("11100 01010", "10110")])
    p = build_prompt(task, np.random.default_rng(0), k=2)
    assert p.text == "01101 10110 -> 11011\n00011 00001 -> 00010\n11100 01010 ->"
    assert (p.answer, p.query, p.task) == ("10110", "11100 01010", "fixed")
    assert [p.text[i:i + 2] for i in p.arrows] == ["->"] * 3
    q = build_prompt(task, np.random.default_rng(0), k=1, instruct=True)
    assert q.text == "Copy the input.\n01101 10110 -> 11011\n00011 00001 ->"
    assert [q.text[i:i + 2] for i in q.arrows] == ["->"] * 2
    assert format_prompt([], "x")[0] == "x ->"


def test_instruction_states_the_task():
    assert get_task("bitwise-xor").instruction == "Compute the bitwise XOR of the two binary numbers."
    assert get_task("pos-adjective").instruction == "Output the first adjective in the sentence."


@pytest.mark.parametrize("name", ["bitwise-nor", "pos-adverb"])
def test_same_seed_same_prompts(name):
    task = get_task(name)
    a = build_prompts(task, np.random.default_rng(7), n=5, k=4)
    b = build_prompts(task, np.random.default_rng(7), n=5, k=4)
    c = build_prompts(task, np.random.default_rng(8), n=5, k=4)
    assert a == b and a != c
    assert all(len(p.demonstrations) == 4 and p.text.count("\n") == 4 for p in a)


def test_bad_shot_count_is_refused():
    with pytest.raises(ConfigError, match="k \\(shots\\) must be an integer >= 0; got -1"):
        build_prompt(get_task("bitwise-and"), np.random.default_rng(0), k=-1)
