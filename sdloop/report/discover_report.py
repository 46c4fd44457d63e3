"""Writing a scenario-discovery result: the box, its coverage and density, and a figure.

``write_discovery(outcome, box, out)`` writes ``box.csv`` (the restricted inputs' limits and
their sampled ranges), ``box.tex``, ``peeling.csv`` (PRIM's peeling trajectory),
``discover.md`` (what was asked, coverage, density, mass) and ``discover.pdf``/``.png``: (a) the
peeling trajectory, coverage against density, the chosen box marked; (b) the box's limits on
each restricted input, as a share of its sampled range; (c) the draws over the two most
restricted inputs, those of interest in black, with the box.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sdloop.experiments.discovery import Box, Outcome
from sdloop.report import plotting
from sdloop.report.output import atomic_write_text, write_csv
from sdloop.report.tables import write_table


def summary_lines(outcome: Outcome, box: Box, threshold: float = 0.8) -> list[str]:
    lines = [f"Of interest: {outcome.what}: {int(outcome.y.sum())} of {len(outcome.y)} draws "
             f"({outcome.y.mean():.1%}).",
             f"Box ({box.method}): coverage {box.coverage:.1%} (share of those draws inside the box), "
             f"density {box.density:.1%} (share of the box's draws that are of interest), "
             f"mass {box.mass:.1%} (share of all draws inside the box)."]
    if box.limits.empty and box.chosen == 0 and box.density < threshold:
        lines.append(f"PRIM found no region where the density reaches {threshold:g}; a lower --threshold "
                     "may find a looser one.")
    elif box.limits.empty:
        lines.append("No input restricted: the outcome is not concentrated in any region of the inputs.")
    for row in box.limits.itertuples():
        lines.append(f"  {row.parameter}: {row.low:.4g} .. {row.high:.4g} (sampled {row.sampled_low:.4g} .. "
                     f"{row.sampled_high:.4g})")
    return lines


def write_discovery(outcome: Outcome, box: Box, out: Path, threshold: float = 0.8,
                    units: dict | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = write_table(box.limits, out / "box", caption=f"Region where {outcome.what}: coverage "
                          f"{box.coverage:.1%}, density {box.density:.1%}", label="tab:discovery",
                          float_format=None)  # limits in full: rounding a limit can drop the draw that sits on it
    if not box.trajectory.empty:
        written.append(write_csv(box.trajectory, out / "peeling.csv", index_label="step", float_format="%.6g"))
    text = ["# Scenario discovery", "", *summary_lines(outcome, box, threshold), "",
            "Files: box.csv (limits; box.tex as LaTeX), peeling.csv (PRIM's steps), discover.pdf/.png."]
    written.append(atomic_write_text(out / "discover.md", "\n".join(text) + "\n"))
    written += plotting.save_figure(discovery_figure(outcome, box, units), out / "discover")
    return written


def _by_strength(limits: pd.DataFrame) -> pd.DataFrame:
    """Restrictions, strongest first: by quasi-p-value where PRIM gives one, else by the share of
    the sampled range the box keeps."""
    if limits.empty:
        return limits
    span = (limits["sampled_high"] - limits["sampled_low"]).replace(0, 1)
    kept = (limits["high"] - limits["low"]) / span
    keys = (limits["qp_value"].fillna(1.0), kept) if "qp_value" in limits else (kept, kept)
    order = sorted(range(len(limits)), key=lambda i: (keys[0].iloc[i], keys[1].iloc[i]))
    return limits.iloc[order].reset_index(drop=True)


def _with_unit(name: str, units: dict) -> str:
    unit = units.get(name, "")
    return f"{name} ({unit})" if unit else name


def discovery_figure(outcome: Outcome, box: Box, units: dict | None = None):
    units = units or {}
    with plotting.style():
        fig, axes = plotting.panel_grid(3, ncols=3, height=plotting.PANEL_HEIGHT * 1.1)
        ax = axes[0]
        steps = box.trajectory
        if not steps.empty:
            ax.plot(steps["coverage"], steps["density"], color="0.5", lw=0.8, marker="o", ms=2,
                    markerfacecolor="white")
            if box.chosen is not None:
                step = steps.loc[box.chosen]
                ax.plot([step["coverage"]], [step["density"]], marker="s", ms=5, color="0.0", markerfacecolor="white",
                        linestyle="none", label="PRIM's step")
            ax.plot([box.coverage], [box.density], marker="s", ms=5, color="0.0", linestyle="none",
                    label="box (insignificant\nrestrictions dropped)")
            ax.legend(loc="lower left", fontsize=5.5, frameon=False)
            ax.set_title("PRIM peeling trajectory", loc="left")
        else:
            ax.plot([box.coverage], [box.density], marker="s", ms=5, color="0.0", linestyle="none")
            ax.set_title(box.method, loc="left")
        ax.set_xlabel("coverage (-)")
        ax.set_ylabel("density (-)")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.annotate(f"chosen box\ncoverage {box.coverage:.0%}\ndensity {box.density:.0%}", (box.coverage, box.density),
                    xytext=(-6, -6), textcoords="offset points", ha="right", va="top", fontsize=5.5)
        ax = axes[1]
        limits = _by_strength(box.limits)
        y = np.arange(len(limits))
        span = (limits["sampled_high"] - limits["sampled_low"]).replace(0, 1)
        lo = (limits["low"] - limits["sampled_low"]) / span
        hi = (limits["high"] - limits["sampled_low"]) / span
        ax.barh(y, np.ones(len(limits)), color="0.9", height=0.6)
        ax.barh(y, hi - lo, left=lo, color="0.25", height=0.6)
        ax.set_yticks(y, [str(p) for p in limits["parameter"]], fontsize=5.5)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of the sampled range (-)")
        ax.set_title("box limits", loc="left")
        if limits.empty:
            ax.text(0.5, 0.5, "no input restricted", ha="center", transform=ax.transAxes, fontsize=6)
        ax = axes[2]
        names = list(limits["parameter"][:2]) or list(outcome.inputs.columns[:2])
        if len(names) == 1:
            names.append(next(c for c in outcome.inputs.columns if c != names[0]) if outcome.inputs.shape[1] > 1
                         else names[0])
        x, z = outcome.inputs[names[0]], outcome.inputs[names[1]]
        ax.scatter(x[~outcome.y], z[~outcome.y], s=2, color="0.78", lw=0, label="other draws")
        ax.scatter(x[outcome.y], z[outcome.y], s=2.5, color="0.0", lw=0, label="of interest")
        bounds = {r.parameter: (r.low, r.high) for r in limits.itertuples()}
        bx = bounds.get(names[0], (x.min(), x.max()))
        bz = bounds.get(names[1], (z.min(), z.max()))
        from matplotlib.patches import Rectangle

        ax.add_patch(Rectangle((bx[0], bz[0]), bx[1] - bx[0], bz[1] - bz[0], fill=False, ec="0.0", lw=1.0,
                               ls="--"))
        ax.set_xlabel(_with_unit(names[0], units))
        ax.set_ylabel(_with_unit(names[1], units))
        ax.set_title("draws and the box", loc="left")
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=2, frameon=False,
                   markerscale=3)
        fig.suptitle(f"Where {outcome.what}", fontsize=7.5)
    return fig


def box_frame(box: Box) -> pd.DataFrame:
    return box.limits.assign(coverage=box.coverage, density=box.density, mass=box.mass)
