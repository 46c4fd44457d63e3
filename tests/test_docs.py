"""The documentation stays true to the model files and the commands."""

from __future__ import annotations

import re

import pytest

from conftest import MODELS, ROOT
from sdloop.lang.equations import read_text, SourceIndex, split_equations


def documented_variables(section: str) -> set[str]:
    text = (MODELS / "README.md").read_text()
    start = text.index(f"## {section}")
    end = text.find("\n## ", start + 1)
    body = text[start:end if end > 0 else None]
    return {m.group(1).strip() for m in re.finditer(r"^\| ([^|]+?) \| (stock|stock \(SMOOTH\)|flow|auxiliary|"
                                                     r"constant|control) \|", body, re.M)}


@pytest.mark.parametrize("model", ["policy_loop.mdl", "sector_lifecycle.mdl"])
def test_models_readme_documents_every_variable(model):
    path = MODELS / model
    names = set(SourceIndex(path, split_equations(path, read_text(path))).names())
    documented = documented_variables(model)
    assert names - documented == set(), "undocumented variables"
    assert documented - names == set(), "documented variables the model does not have"


def test_readme_quick_start_is_the_two_commands():
    text = (ROOT / "README.md").read_text()
    quick = text[text.index("## Quick start"):text.index("### Edit a model")]
    commands = re.findall(r"^make (\w+)", quick, re.M)
    assert commands == ["run", "test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_error_example_matches_the_model_file():
    text = (ROOT / "README.md").read_text()
    line = int(re.search(r"policy_loop\.mdl:(\d+): Innovation Output", text).group(1))
    model_lines = (MODELS / "policy_loop.mdl").read_text().splitlines()
    assert model_lines[line - 1].startswith("Innovation Output =")
