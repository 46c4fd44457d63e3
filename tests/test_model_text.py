"""A model file is data, never code (issue #16 item 1): comments that try to end PySD's
docstrings are made inert, the generated Python is checked before import, and the
translation cache is private and hash-checked. Each attack writes a marker file if it runs;
every test asserts the marker was never written."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from conftest import FIXTURES
from sdloop.cli.main import main

CONTROL = """
INITIAL TIME = 0 ~ Year ~ Start. |
FINAL TIME = 4 ~ Year ~ End. |
TIME STEP = 1 ~ Year ~ Step. |
SAVEPER = TIME STEP ~ Year ~ Save. |
"""


def payload(marker: Path) -> str:
    return f'import os; os.system("id > {marker}")'


def injected_mdl(tmp_path: Path) -> Path:
    marker = tmp_path / "PWNED"
    path = tmp_path / "inject.mdl"
    path.write_text("{UTF-8}\nx = 1\n\t~\tDmnl\n\t~\tAssumed. x\"\"\"\\" + payload(marker) + "\\\"\"\"\n\t|\n\n"
                    "S = INTEG(x, 0)\n\t~\tDmnl\n\t~\tAssumed.\n\t|\n" + CONTROL)
    return path


def injected_xmile(tmp_path: Path) -> Path:
    text = (FIXTURES / "sir.xmile").read_text()
    doc = "<doc>People who can catch the disease.</doc>"
    assert doc in text
    evil = 'Assumed. x&quot;&quot;&quot;\\' + payload(tmp_path / "PWNED").replace('"', "&quot;") + '\\"""'
    path = tmp_path / "inject.xmile"
    path.write_text(text.replace(doc, f"<doc>{evil}</doc>", 1))
    return path


def fresh_model(tmp_path: Path) -> Path:
    """A model file of its own (a path no earlier test loaded in this process)."""
    path = tmp_path / "exponential_growth.mdl"
    path.write_text((FIXTURES / "exponential_growth.mdl").read_text())
    return path


def forget_loaded_models() -> None:
    """The next load translates (or finds in the cache) again, as a new process would."""
    from sdloop.engines import choice, pysd_model

    pysd_model._MODELS.clear()
    choice._CHOICES.clear()


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("SDLOOP_CACHE", str(folder))
    return folder


@pytest.mark.parametrize("make", [injected_mdl, injected_xmile])
def test_a_comment_that_ends_the_docstring_runs_nothing(tmp_path, cache, capsys, make):
    path = make(tmp_path)
    out = tmp_path / "out.csv"
    assert main(["simulate", str(path), "--engine", "pysd", "--out", str(out)]) == 0, capsys.readouterr().err
    assert out.exists()
    assert not (tmp_path / "PWNED").exists()
    generated = next(cache.rglob(f"{path.stem}.py")).read_text()
    assert "x'''" in generated and 'x"""' not in generated  # kept, as text


@pytest.mark.parametrize("make, variable", [(injected_mdl, "x"), (injected_xmile, "Susceptible")])
def test_check_reports_the_comment_as_an_error(tmp_path, cache, capsys, make, variable):
    path = make(tmp_path)
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1)
                if text.startswith(f"{variable} = ") or f'name="{variable}"' in text)
    assert f"{path}:{line}: error: {variable}: " in out and 'three double quotes (""")' in out
    assert not (tmp_path / "PWNED").exists()


def test_the_verifier_refuses_what_pysd_writes_for_the_raw_comment(tmp_path):
    from pysd.builders.python.python_model_builder import ModelBuilder
    from pysd.translators.vensim.vensim_file import VensimFile

    from sdloop.engines.generated_code import problems, verify_generated
    from sdloop.errors import ModelFileError
    from sdloop.lang.inert import docstrings
    from sdloop.lang.source import parse_model

    path = injected_mdl(tmp_path)
    reader = VensimFile(path)
    reader.parse()
    raw = ModelBuilder(reader.get_abstract_model()).build_model()  # PySD alone: the comment becomes code
    expected = docstrings(parse_model(path)[0])
    found = problems(raw.read_text(), expected)
    assert any("the docstring of 'x' is not its comment" in p for p in found)
    assert any("uses 'os'" in p for p in found)
    with pytest.raises(ModelFileError, match="refused to run PySD's translation inject.py"):
        verify_generated(tmp_path, expected, path)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("source, words", [
    ('"""doc"""\nimport os\n', "imports os"),
    ('"""doc"""\nfrom pysd import Component\nx = eval("1")\n', "uses 'eval'"),
    ('"""doc"""\nx = ().__class__\n', "uses '.__class__'"),
    ('"""doc"""\n"a stray string"\n', "a string outside any docstring"),
    ('def f(:\n', "not valid Python"),
])
def test_the_verifier_rules(source, words):
    from sdloop.engines.generated_code import problems

    assert any(words in p for p in problems(source, {}))


def test_a_changed_or_partial_cache_entry_is_rebuilt_and_never_run(tmp_path, cache, capsys):
    model = fresh_model(tmp_path)
    out = tmp_path / "first.csv"
    assert main(["simulate", str(model), "--engine", "pysd", "--out", str(out)]) == 0
    (entry,) = [p for p in cache.iterdir() if p.name.startswith("exponential_growth-")]
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    translated = entry / "exponential_growth.py"
    translated.write_text(translated.read_text() + f'\nopen("{tmp_path / "PWNED"}", "w")\n')
    capsys.readouterr()
    again = tmp_path / "again.csv"
    forget_loaded_models()
    assert main(["simulate", str(model), "--engine", "pysd", "--out", str(again)]) == 0
    assert "was damaged" in capsys.readouterr().err
    assert not (tmp_path / "PWNED").exists()
    assert again.read_text() == out.read_text()
    translated.unlink()  # what a killed translation leaves behind
    forget_loaded_models()
    assert main(["simulate", str(model), "--engine", "pysd", "--out", str(again)]) == 0
    assert "was damaged" in capsys.readouterr().err and translated.exists()
    forget_loaded_models()
    assert main(["simulate", str(model), "--engine", "pysd", "--out", str(again)]) == 0
    assert "damaged" not in capsys.readouterr().err  # a sound entry is used as it is


def test_a_cache_that_is_a_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "cache").write_text("not a folder")
    monkeypatch.setenv("SDLOOP_CACHE", str(tmp_path / "cache"))
    assert main(["simulate", str(fresh_model(tmp_path)), "--engine", "pysd"]) == 2
    err = capsys.readouterr().err
    assert f"cannot use the translation cache {tmp_path / 'cache'}: is a file, not a folder" in err
    assert "Traceback" not in err


def test_an_open_cache_folder_is_made_private(tmp_path, cache, capsys):
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    assert main(["simulate", str(fresh_model(tmp_path)), "--engine", "pysd", "--out", str(tmp_path / "o.csv")]) == 0
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
