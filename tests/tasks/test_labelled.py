"""The labelled sets: the shipped ones are balanced and well formed; a user's CSV/JSONL is read
with its columns checked, and each bad file is refused in one line naming what is wrong."""

from __future__ import annotations

import json

import pytest

from iclab.errors import ConfigError, UnknownNameError
from iclab.tasks.labelled import (SEPARATOR, LabelledSet, format_example, format_input, ood_sentences, read_labelled,
                                  shipped_names, shipped_set)


@pytest.mark.parametrize("name", shipped_names())
def test_shipped_sets_are_balanced_and_well_formed(name):
    s = shipped_set(name)
    assert len(s) >= 40 and len(set(s.texts)) == len(s)
    counts = [s.labels.count(c) for c in range(s.n_classes)]
    assert len(set(counts)) == 1, counts  # every class equally often
    assert all("\n" not in t and t == t.strip() for t in s.texts)


def test_shipped_set_names_and_ood_sentences():
    assert shipped_names() == ["sentiment", "topic", "entailment"]
    assert shipped_set("topic").label_names == ("sports", "business", "science", "food")
    assert len(ood_sentences()) >= 20
    with pytest.raises(UnknownNameError, match="known: sentiment, topic, entailment"):
        shipped_set("sentimnet")


def test_format_of_an_example_and_a_query():
    s = LabelledSet("t", ("a b",), (0,), ("yes", "no"), "Q:", "A:")
    assert format_example(s, "a b", "yes") == "Q: a b\nA: yes"
    assert format_example(s, "a b", None) == "Q: a b\nA:"
    assert format_input(s, "a b") == "Q: a b" and SEPARATOR == "\n\n"


def test_user_csv_and_jsonl_are_read(tmp_path):
    csv = tmp_path / "mine.csv"
    csv.write_text("sentence,tag\nI love it,good\nawful  thing,bad\nnice,good\nworse,bad\n")
    s = read_labelled(csv, "sentence", "tag", input_prefix="Text:", label_prefix="Tag:")
    assert s.texts == ("I love it", "awful thing", "nice", "worse") and s.label_names == ("bad", "good")
    assert s.labels == (1, 0, 1, 0) and (s.input_prefix, s.label_prefix) == ("Text:", "Tag:")
    jl = tmp_path / "mine.jsonl"
    jl.write_text("\n".join(json.dumps({"text": t, "label": lab}) for t, lab in
                            [("a", "x"), ("b", "y"), ("c", "x"), ("d", "y")]) + "\n")
    s = read_labelled(jl, labels=["y", "x"])
    assert s.label_names == ("y", "x") and s.labels == (1, 0, 1, 0)


@pytest.mark.parametrize("content,suffix,match", [
    ("sentence,tag\na,x\n", ".csv", "no column 'text' .*columns found: sentence, tag"),
    ('{"text": "a", "label": "x"}\nnot json\n', ".jsonl", "line 2 is not JSON"),
    ("text,label\na,x\n,y\nb,y\n", ".csv", "line 3 has an empty 'text'"),
    ("text,label\na,x\nb,x\n", ".csv", "only one label"),
    ("text,label\na,x\nb,x\nc,y\n", ".csv", "fewer than 2 examples: {'y': 1}"),
    ("", ".csv", "no examples"),
])
def test_bad_user_files_are_refused_in_one_line(tmp_path, content, suffix, match):
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    with pytest.raises(ConfigError, match=match) as e:
        read_labelled(path)
    assert "\n" not in str(e.value) and "data.path" in str(e.value)


def test_missing_file_and_unknown_label_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        read_labelled(tmp_path / "nope.csv")
    path = tmp_path / "x.csv"
    path.write_text("text,label\na,x\nb,y\nc,x\nd,y\n")
    with pytest.raises(ConfigError, match=r"label\(s\) \['y'\] are not among \['x', 'z'\]"):
        read_labelled(path, labels=["x", "z"])
