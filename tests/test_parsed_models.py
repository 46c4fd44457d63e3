"""Parsed models kept between processes: the same text is not parsed again, an in-place edit
re-parses only the equations it changed and gives what a full parse gives, anything else is
parsed in full."""

from __future__ import annotations

import re
import shutil

import pytest

from conftest import MODELS
from sdloop.engines import parsed_models
from sdloop.errors import ModelFileError
from sdloop.lang.source import parse_model


@pytest.fixture()
def model(tmp_path, monkeypatch):
    monkeypatch.setenv("SDLOOP_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "policy_loop.mdl"
    shutil.copy(MODELS / "policy_loop.mdl", path)
    return path


def _same(ours, reference):
    assert ours[0] == reference[0]
    assert ours[1].equations == reference[1].equations


def _full_parses(monkeypatch) -> list:
    calls = []

    def counted(path, **kwargs):
        calls.append(path)
        return parse_model(path, **kwargs)

    monkeypatch.setattr(parsed_models, "parse_model", counted)
    return calls


def _edit(path, old, new):
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))


def test_same_text_is_parsed_once_and_an_edit_only_where_it_changed(model, monkeypatch):
    calls = _full_parses(monkeypatch)
    _same(parsed_models.parsed_model(model), parse_model(model))
    _same(parsed_models.parsed_model(model), parse_model(model))
    assert len(calls) == 1  # the second came from the cache
    # one constant's value, another's comment and units, an equation rewritten on its lines
    _edit(model, "Policy Fund Multiplier = 1\n", "Policy Fund Multiplier = 1.5\n")
    _edit(model, "Patent Yield = 707\n\t~\tpatents/billion yuan", "Patent Yield = 800\n\t~\tpatents/million yuan")
    text = model.read_text()
    equation = re.search(r"(?m)^Capability Shock Fraction = 0$", text)
    model.write_text(text[:equation.start()] + "Capability Shock Fraction = MIN(0.5, 0.1 * 2)"
                     + text[equation.end():])
    spliced = parsed_models.parsed_model(model)
    assert len(calls) == 1  # spliced, not parsed in full
    _same(spliced, parse_model(model))


def test_other_edits_are_parsed_in_full_and_errors_keep_their_line(model, monkeypatch):
    calls = _full_parses(monkeypatch)
    parsed_models.parsed_model(model)
    _edit(model, "Policy Fund Multiplier = 1\n", "Policy Fund Multiplier = 1\n\n")  # a line added
    _same(parsed_models.parsed_model(model), parse_model(model))
    assert len(calls) == 2
    line = model.read_text().splitlines().index("Patent Yield = 707") + 1
    _edit(model, "Patent Yield = 707\n", "Patent Yield = 707 *\n")
    with pytest.raises(ModelFileError) as error:
        parsed_models.parsed_model(model)
    assert error.value.line == line and error.value.variable == "Patent Yield"
    assert len(calls) == 2  # the in-place check found it


def test_a_damaged_entry_is_not_used(model, monkeypatch):
    calls = _full_parses(monkeypatch)
    parsed_models.parsed_model(model)
    (entry,) = [p for p in (model.parent / "cache" / "parsed").iterdir() if p.is_dir() and len(p.name) == 32]
    (entry / "model.pickle").write_bytes(b"not a pickle")
    _same(parsed_models.parsed_model(model), parse_model(model))
    assert len(calls) == 2



def test_an_equation_the_file_parser_reads_differently_gives_a_full_parse(tmp_path, monkeypatch):
    """teacup_vensim.mdl's 'Room Temperature' (name and value on separate lines, as Vensim saves
    it) parsed alone differs from PySD's reading of the file: the edit gives the full parse."""
    from conftest import FIXTURES

    monkeypatch.setenv("SDLOOP_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "teacup.mdl"
    shutil.copy(FIXTURES / "corpus" / "teacup_vensim.mdl", path)
    calls = _full_parses(monkeypatch)
    parsed_models.parsed_model(path)
    _edit(path, "\t70\n", "\t71\n")
    _same(parsed_models.parsed_model(path), parse_model(path))
    assert len(calls) == 2
