"""models/README.md lists each project model's named loops as the loop analysis finds them."""

from __future__ import annotations

import re

import pytest

from conftest import MODELS
from sdloop.engines.euler import simulate
from sdloop.analysis.loops import load_loop_names, named_loop
from sdloop.lang.names import normalize
from sdloop.structure.build import build_structure


def readme_loops(section: str) -> list[dict]:
    text = (MODELS / "README.md").read_text()
    start = text.index(f"## {section}")
    end = text.find("\n## ", start + 1)
    body = text[start:end if end > 0 else None]
    rows = []
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.fullmatch(r"[RBU]\d+", cells[0]):
            rows.append({"id": cells[0], "name": cells[1], "polarity": cells[2],
                         "variables": [v.strip() for v in cells[-1].split("->")]})
    return rows


@pytest.mark.parametrize("model", ["policy_loop", "sector_lifecycle"])
def test_readme_loops_are_the_models_loops(model):
    path = MODELS / f"{model}.mdl"
    structure = build_structure(path)
    run = simulate(structure)
    documented = readme_loops(f"{model}.mdl")
    sidecar = {entry.id: entry for entry in load_loop_names(path)}
    assert documented, "no loop table found"
    assert {row["id"] for row in documented} == set(sidecar), "README and sidecar name different loops"
    for row in documented:
        entry = sidecar[row["id"]]
        assert entry.name == row["name"]
        loop = named_loop(structure, entry, run)
        assert loop is not None, f"{row['id']} is not a loop of {model}"
        assert [normalize(v) for v in loop.variables] == [normalize(v) for v in row["variables"]], row["id"]
        assert loop.polarity == row["polarity"], row["id"]


def test_the_four_loops_domain_md_asks_for_are_there():
    names = {row["name"]: row["polarity"] for row in readme_loops("policy_loop.mdl")}
    assert names["Policy supply, innovation and industry (fiscal)"] == "R"
    assert names["Policy response to the performance gap"] == "B"
    assert names["Policy learning: precision"] == "R"
    assert names["Talent attraction by upgraded industry"] == "R"


LOOP_GROUPS = (("Lever triggers: Research", "Research Clock"), ("Lever triggers: Scale", "Scale Clock"),
               ("Lever triggers: Protection", "Protection Clock"), ("Lever triggers: Opening", "Opening Clock"),
               ("Capability", "Technological Capability"), ("Foreign reaction", "Foreign Backlash"),
               ("Learning curve", "Cumulative Production"))


def test_sector_loop_groups_in_the_readme_count_the_models_loops():
    """Every simple loop (not inside one SMOOTH) in the first group whose variable it passes."""
    import collections
    import itertools

    import networkx as nx

    from sdloop.analysis.loops import causal_graph

    graph = causal_graph(build_structure(MODELS / "sector_lifecycle.mdl"))
    counts = collections.Counter()
    for cycle in itertools.islice(nx.simple_cycles(graph), 5000):
        if all("(stage" in node or "(flow" in node for node in cycle):
            continue
        group = next((name for name, node in LOOP_GROUPS if node in cycle), "Capacity, prices and margins")
        counts[group] += 1
    text = (MODELS / "README.md").read_text()
    documented = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\| ([^|]+?) \| [^|]+ \| (\d+) \|$", text, re.M)}
    assert {name: documented.get(name) for name in counts} == dict(counts)
    total = re.search(r"the model has ([\d,]+) simple\nfeedback loops", text)
    assert total and int(total.group(1).replace(",", "")) == sum(counts.values())
