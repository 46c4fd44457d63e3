"""The unit definitions an XMILE file declares in ``<model_units>``.

XMILE (and Stella, which writes it) lets a model name its units and their aliases::

    <model_units>
        <unit name="Person"><alias>People</alias><alias>persons</alias></unit>
        <unit name="Kilometer"><eqn>1000 * Meter</eqn></unit>
    </model_units>

``unit_definitions(path)`` returns what each declared name stands for: an alias maps to
its unit's name, a unit with an ``<eqn>`` to that equation (``{"people": "Person",
"kilometer": "1000 * Meter"}``); keys are lower case. The XMILE unit conventions
themselves (``per``, ``time``, ``dimensionless``) are in ``sdloop.structure.units``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from sdloop.errors import ModelFileError

XMILE_SUFFIXES = frozenset({".xmile", ".xml", ".stmx"})


def is_xmile(path: str | Path) -> bool:
    """True for a file sdloop reads as XMILE (by its suffix)."""
    return Path(path).suffix.lower() in XMILE_SUFFIXES


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def unit_definitions(path: str | Path) -> dict[str, str]:
    """Lower-case unit name or alias -> the unit text it stands for (ModelFileError if unreadable)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ModelFileError(f"cannot read XMILE units: {exc}", file=path) from None
    definitions: dict[str, str] = {}
    for unit in root.iter():
        if _local(unit.tag) != "unit" or not unit.get("name"):
            continue
        name = " ".join(unit.get("name").split())
        for child in unit:
            text = " ".join((child.text or "").split())
            if not text:
                continue
            if _local(child.tag) == "eqn":
                definitions[name.lower()] = text
            elif _local(child.tag) == "alias" and text.lower() != name.lower():
                definitions[text.lower()] = name
    return definitions
