"""Tables for papers: a DataFrame as a LaTeX ``booktabs`` table, written beside its CSV.

``booktabs(frame, formats=...)`` gives a ``table`` environment with ``\\toprule``, ``\\midrule``
and ``\\bottomrule`` (``\\usepackage{booktabs}``), text left-aligned, numbers right-aligned and
formatted per column (``formats``: a format spec such as ``".2f"``), missing values as ``--``
and never-reached ones (+inf) as ``never``; every cell is escaped for LaTeX. ``write_table``
writes ``STEM.csv`` and ``STEM.tex`` atomically.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from sdloop.report.output import atomic_write_text, write_csv

_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\n": " "}


def latex_escape(text: object) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text))


def format_number(value, fmt: str) -> str:
    """``format(value, fmt)``, without the sign of a negative number that prints as zero
    (``-0.00`` for -0.001 in ``.2f``): a table or figure cell shows ``0.00``."""
    text = format(value, fmt)
    mantissa = re.split(r"[eE]", text, maxsplit=1)[0]
    if text.startswith("-") and not re.search(r"[1-9]", mantissa):
        return text[1:]
    return text


def _cell(value, fmt: str | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "--"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, float, np.integer, np.floating)):
        value = float(value) if isinstance(value, (float, np.floating)) else int(value)
        if isinstance(value, float) and math.isinf(value):
            return "never" if value > 0 else "$-\\infty$"
        try:
            return latex_escape(format_number(value, fmt or (".6g" if isinstance(value, float) else "d")))
        except ValueError:
            return latex_escape(f"{value:.6g}")
    return latex_escape(value)


def booktabs(frame: pd.DataFrame, *, formats: Mapping[str, str] | None = None, caption: str | None = None,
             label: str | None = None, headers: Mapping[str, str] | None = None) -> str:
    """The table as LaTeX with booktabs rules (``headers`` renames columns for print)."""
    formats, headers = dict(formats or {}), dict(headers or {})
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]
    spec = "".join("r" if n else "l" for n in numeric)
    head = " & ".join(latex_escape(headers.get(c, c)) for c in frame.columns) + r" \\"
    rows = [" & ".join(_cell(v, formats.get(c)) for c, v in zip(frame.columns, row)) + r" \\"
            for row in frame.itertuples(index=False, name=None)]
    lines = [r"\begin{table}[htbp]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{latex_escape(label)}}}")
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", head, r"\midrule", *rows, r"\bottomrule",
              r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(frame: pd.DataFrame, stem: str | Path, *, formats: Mapping[str, str] | None = None,
                caption: str | None = None, label: str | None = None, float_format: str | None = "%.6g",
                csv: bool = True, headers: Mapping[str, str] | None = None) -> list[Path]:
    """``STEM.csv`` (unless ``csv`` is False) and ``STEM.tex`` of ``frame``."""
    stem = Path(stem)
    written = []
    if csv:
        written.append(write_csv(frame, stem.with_suffix(".csv"), index=False, float_format=float_format,
                                 na_rep=""))
    written.append(atomic_write_text(stem.with_suffix(".tex"), booktabs(frame, formats=formats, caption=caption,
                                                                         label=label, headers=headers)))
    return written
