"""The calibration report: tables, figures and a Markdown summary in a run directory.

The only module of the calibration package that imports matplotlib (through
``sdloop.report.plotting``, whose house style every figure follows).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from calibration.likelihood import as_measured
from calibration.run import Calibration, LEVEL, fitted_case_text, history_case_text
from calibration.uncertainty import threshold
from calibration.validate import holdout_only_series
from sdloop.report.exports import write_index
from sdloop.report.output import atomic_write_text, manifest, write_csv, write_json
from sdloop.report.tables import write_table
from sdloop.report.plotting import panel_grid, save_figure, style

Z = 1.959964  # two-sided 95% normal quantile


def _times(series, years):
    offset = 1.0 if series.aggregate in ("end", "cumulative") else 0.5  # at the year's end
    return np.asarray(years, dtype=float) + offset


def _scaled(frame: pd.DataFrame, series, scale: float) -> pd.Series:
    column = frame[series.variable]
    measured = as_measured(series, column.index.to_numpy(float), column.to_numpy(float))
    return pd.Series(measured, index=column.index) * scale


def _xlim(ax, years, extra=1.5):
    ax.set_xlim(min(min(years) - 1.5, max(years) - 6), max(years) + extra)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))


def _plain_log(ax, axis="y"):
    """Plain numbers (1,000 not 10^3) on a log axis."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:.3g}"))
    target.set_minor_formatter(NullFormatter())


def _short_unit(unit: str) -> str:
    """A y-axis label from a data unit: the text before any parenthesis or comma, at most 32 chars."""
    short = unit.split("(")[0].split(",")[0].strip()
    return short if len(short) <= 32 else short[:31] + "…"


def series_panels(cal: Calibration, frame):
    """A figure with one panel per target series; yields (axis, series, its rows of ``frame``),
    hiding the panels of series with no rows."""
    fig, axes = panel_grid(len(cal.targets.series))

    def panels():
        for axis, s in zip(axes, cal.targets.series):
            part = frame[frame["series"] == s.name]
            if part.empty:
                axis.set_visible(False)
                continue
            yield axis, s, part

    return fig, panels()


def fit_figure(cal: Calibration, *, ax=None):
    """Model against data per series: best fit with the posterior predictive band and the
    posterior parameter band (or, without a posterior, the profile band and sigma band)."""
    result = cal.result
    frame = result.prediction.frame
    with style():
        fig, panels = series_panels(cal, frame)
        for axis, s, part in panels:
            scale = result.prediction.scale[s.name]
            sigma = result.prediction.sigma[s.name]
            best = _scaled(cal.best_frame, s, scale)
            members = np.array([_scaled(f, s, sc[s.name]).to_numpy() for f, sc in cal.band_frames])
            t = best.index.to_numpy(float)
            band = cal.bands.get(s.name) if cal.bands else None
            if band is not None:
                axis.fill_between(band["time"], band["pred_lo"], band["pred_hi"], color="0.88", lw=0,
                                  label="95% posterior predictive band")
                axis.fill_between(band["time"], band["param_lo"], band["param_hi"], color="0.62", lw=0,
                                  label="95% posterior band (parameters)")
            else:
                if s.error == "log":
                    lo_p, hi_p = best * math.exp(-Z * sigma), best * math.exp(Z * sigma)
                else:
                    lo_p, hi_p = best - Z * sigma, best + Z * sigma
                axis.fill_between(t, lo_p, hi_p, color="0.88", lw=0, label="95% predictive band")
                if len(members):
                    axis.fill_between(t, members.min(axis=0), members.max(axis=0), color="0.62", lw=0,
                                      label="95% parameter band (profile)")
            axis.plot(t, best, color="0", lw=1.1, ls="-", label="model (best fit)")
            axis.plot(_times(s, part["year"]), part["data"], ls="none", marker="o", ms=3.2,
                      mfc="white", mec="0", mew=0.9, label="data")
            _xlim(axis, part["year"])
            lo = min(part["data"].min(), part["model"].min())
            hi = max(part["data"].max(), part["model"].max())
            if s.error == "log":
                axis.set_yscale("log")
                axis.set_ylim(lo / 2.5, hi * 2.5)
                _plain_log(axis)
            if not part["used"].all():
                axis.axvspan(part.loc[~part["used"], "year"].min(), max(part["year"]) + 1.5, color="0.95", lw=0)
            axis.set_title(f"{s.name} (n={len(part)}" + (", level fitted" if s.scale is None else "")
                           + ")", loc="left")
            axis.set_ylabel(_short_unit(cal.targets.data[s.name].unit))
            axis.set_xlabel("Year")
        fig.axes[0].legend(loc="lower right")
        fig.suptitle(f"{cal.targets.name}: model against published data (annual values at mid-year; end-of-year values and totals since a start at the year's end)",
                     fontsize=8)
    return fig


def residual_figure(cal: Calibration):
    """Residuals per series with the estimated or assumed error scale (1 and 2 sigma)."""
    frame = cal.result.prediction.frame
    with style():
        fig, panels = series_panels(cal, frame)
        for axis, s, part in panels:
            sigma = cal.result.prediction.sigma[s.name]
            x = part["year"].to_numpy(float)
            axis.axhline(0, color="0", lw=0.6)
            for k, style_ in ((1, "--"), (2, ":")):
                axis.axhline(k * sigma, color="0.45", lw=0.7, ls=style_)
                axis.axhline(-k * sigma, color="0.45", lw=0.7, ls=style_,
                             label=f"±{k} sigma" if k else None)
            axis.vlines(x, 0, part["residual"], color="0.3", lw=0.8)
            axis.plot(x, part["residual"], ls="none", marker="o", ms=3.2, color="0")
            _xlim(axis, part["year"], extra=1.0)
            rho = cal.result.prediction.rho.get(s.name, 0.0)
            axis.set_title(f"{s.name}\nsigma {sigma:.3g} ({'group ' + s.group if s.group else 'fixed'})"
                           + (f", AR(1) {rho:.2f}" if rho else ""), loc="left")
            axis.set_ylabel("log(model) - log(data)" if s.error == "log" else "model - data")
            axis.set_xlabel("Year")
        fig.suptitle(f"{cal.targets.name}: residuals (dashed ±1 sigma, dotted ±2 sigma)", fontsize=8)
    return fig


def profile_figure(cal: Calibration):
    """Profile likelihood of each parameter with the 95% cut and interval."""
    cut = threshold(LEVEL)
    with style():
        fig, axes = panel_grid(len(cal.profiles))
        for axis, prof, p in zip(axes, cal.profiles, cal.targets.parameters):
            pts = prof.points
            axis.axvspan(prof.lower, prof.upper, color="0.88", lw=0)
            axis.plot(pts["value"], pts["delta"], color="0", marker="o", ms=3, lw=1)
            axis.axhline(cut, color="0.4", ls="--", lw=0.8)
            axis.axvline(prof.estimate, color="0.4", ls=":", lw=0.8)
            lo, hi = float(pts["value"].min()), float(pts["value"].max())
            if p.transform == "log":
                axis.set_xscale("log")
                pad = (hi / lo) ** 0.08
                axis.set_xlim(max(p.lower, lo / pad), min(p.upper, hi * pad))
                _plain_log(axis, "x")
            else:
                pad = 0.08 * (hi - lo)
                axis.set_xlim(max(p.lower, lo - pad), min(p.upper, hi + pad))
            for bound in (p.lower, p.upper):
                if lo - 1e-12 <= bound <= hi + 1e-12:
                    axis.axvline(bound, color="0", lw=2.0)
            axis.set_ylim(-0.2, max(2 * cut, min(float(pts["delta"].max()) * 1.1, 4 * cut)))
            flag = "  NOT IDENTIFIED" if not prof.identified else ""
            axis.set_title(f"{p.name}{flag}", loc="left")
            axis.set_xlabel(f"{p.name} (bounds {p.lower:g}-{p.upper:g})")
            axis.set_ylabel("NLL - NLL at best")
        fig.suptitle(f"{cal.targets.name}: profile likelihood (dashed: 95% cut {cut:.2f}; "
                     "shaded: 95% interval; dotted: estimate; thick: a search bound)", fontsize=8)
    return fig


def _holdout_only_lines(cal: Calibration) -> list[str]:
    """Say plainly which fitted series the hold-out cannot check, and why."""
    names = holdout_only_series(cal.holdout_summary)
    if not names:
        return []
    series = {s.name: s for s in cal.targets.series}
    level = [n for n in names if series[n].scale is not None]
    shape = [n for n in names if series[n].scale is None]
    text = (f"**The hold-out is not clean for {', '.join(names)}**: measured only in hold-out years "
            f"(from {cal.holdout.fit_before} on), so the hold-out fit runs without them while the full fit "
            "(the calibrated values) is set partly by them.")
    if level:
        text += (f" The levels they carry ({', '.join(level)}) are fitted on hold-out years and not tested out "
                 "of sample; in the hold-out fit they rest on the priors alone.")
    if shape:
        text += f" {', '.join(shape)} carr{'y' if len(shape) > 1 else 'ies'} shape only (level estimated)."
    return [text, ""]


def holdout_figure(cal: Calibration):
    """Out-of-sample: the model fitted before the hold-out year against a log-linear trend."""
    from calibration.validate import ceiling, log_linear_forecast, logistic_forecast, random_walk_forecast

    holdout = cal.holdout
    frame = holdout.prediction.frame
    year = holdout.fit_before
    with style():
        fig, panels = series_panels(cal, frame)
        for axis, s, part in panels:
            train, test = part[part["used"]], part[~part["used"]]
            scale = holdout.prediction.scale[s.name]
            model = _scaled(cal.holdout_frame, s, scale)
            axis.axvspan(year, max(part["year"]) + 1.5, color="0.92", lw=0)
            axis.plot(model.index, model, color="0", lw=1.1, label=f"model fitted to data before {year}")
            if len(train) >= 2:
                years = np.arange(min(part["year"]), max(part["year"]) + 1)
                axis.plot(_times(s, years), log_linear_forecast(train["year"], train["data"], years),
                          color="0.45", ls="--", lw=1, label="log-linear trend")
                future = np.arange(max(train["year"]), max(part["year"]) + 1)
                axis.plot(_times(s, future), random_walk_forecast(train["year"], train["data"], future),
                          color="0.45", ls=":", lw=1.2, label="random walk")
                if s.saturates and len(train) >= 3:
                    unit = cal.targets.data[s.name].unit
                    axis.plot(_times(s, years), logistic_forecast(train["year"], train["data"], years,
                                                                  ceiling=ceiling(unit)),
                              color="0.3", ls="-.", lw=1, label="logistic")
            axis.plot(_times(s, train["year"]), train["data"], ls="none", marker="o", ms=3.2, color="0",
                      label="data used in the fit")
            axis.plot(_times(s, test["year"]), test["data"], ls="none", marker="o", ms=3.6, mfc="white",
                      mec="0", mew=0.9, label="held-out data")
            _xlim(axis, part["year"])
            if s.error == "log":
                axis.set_yscale("log")
                lo = min(part["data"].min(), part["model"].min())
                hi = max(part["data"].max(), part["model"].max())
                axis.set_ylim(lo / 2.5, hi * 2.5)
                _plain_log(axis)
            axis.set_title(s.name, loc="left")
            axis.set_ylabel(_short_unit(cal.targets.data[s.name].unit))
            axis.set_xlabel("Year")
        fig.axes[0].legend(loc="lower right")
        fig.suptitle(f"{cal.targets.name}: out-of-sample check, {year} onward held back (shaded), "
                     "against three naive benchmarks",
                     fontsize=8)
    return fig


def _markdown_table(frame: pd.DataFrame, floatfmt: str = ".4g") -> str:
    def cell(v):
        if isinstance(v, float):
            return "" if math.isnan(v) else format(v, floatfmt)
        return str(v)

    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def summary_markdown(cal: Calibration) -> str:
    r = cal.result
    t = cal.targets
    stats = cal.statistics[["series", "years", "n", "RMSE", "MAPE", "R2", "UM", "US", "UC", "sigma", "sigma_from"]]
    diagnostics = cal.statistics[["series", "n", "ar1", "resid_acf1", "runs", "runs_expected", "runs_p"]]
    params = cal.parameters[["parameter", "estimate", "ci95_lower", "ci95_upper", "bound_lower",
                             "bound_upper", "identified", "note"]]
    lines = [
        f"# Calibration report: {t.name}", "", t.description, "",
        f"Model `{t.model.name}`" + (f", base case `{t.case.name}`" if t.case else "") +
        f"; engine {r.engine}; seed {cal.seed}, {cal.starts} differential-evolution starts; NLL at the optimum "
        f"{r.nll:.4f}; converged: {r.converged} ({r.message}); {r.agreeing_starts} of {len(r.starts)} starts "
        f"ended within 0.1 of the best; {r.evaluations} runs; bounds hit: "
        f"{', '.join(f'{k} ({v})' for k, v in r.bounds_hit.items()) or 'none'}. Engine against PySD at the "
        f"estimate: largest relative difference {cal.parity:.2e}.",
        "",
        "Error model (see `calibration/likelihood.py`): Gaussian AR(1) residuals (log or absolute) with the "
        "error scale fixed at the series' documented measurement error or shared by a group of series "
        "(never free per series). Intervals: profile likelihood, 95% (chi-squared cut 1.92).",
        "",
        "## Fit statistics (in-sample, data units; Theil U^M bias, U^S unequal variation, "
        "U^C unequal covariation; R2 = squared correlation)", "",
        _markdown_table(stats), "",
        "## Residual diagnostics (lag-1 autocorrelation; Wald-Wolfowitz runs test on residual signs, "
        "small p = too few runs = serially correlated)", "",
        _markdown_table(diagnostics), "",
        "## Parameters (95% profile-likelihood intervals; not identified = the interval runs into a bound)", "",
        _markdown_table(params), "",
    ]
    if cal.posterior is not None:
        post = cal.posterior
        lines += [f"## Posterior (emcee, {post.walkers} walkers, {post.burn} burn-in steps, "
                  f"{len(post.draws)} draws kept; acceptance {post.acceptance:.2f}; "
                  f"{'converged' if post.reliable else 'NOT converged'}: chain > 50 tau and R-hat < 1.05)", "",
                  _markdown_table(post.summary()), ""]
    lines += [
        f"## Out-of-sample: fitted to data before {cal.holdout.fit_before}, forecasting the rest "
        "(RMS log error; benchmarks fitted to the same training years)", "",
        _markdown_table(cal.holdout_summary), "",
        *_holdout_only_lines(cal),
        "## Priors and the hold-out", "",
        ("Every estimated parameter names the data years behind its bounds and start; none uses a "
         f"year from {t.holdout_from} on." if not cal.prior_problems else
         "Problems:\n" + "\n".join(f"- {m}" for m in cal.prior_problems)), "",
        "## Series and caveats", "",
    ]
    for s in t.series:
        data = t.data[s.name]
        lines.append(f"- **{s.name}** (`{Path(s.file).name}`, {len(data)} sourced points "
                     f"{data.years[0]}-{data.years[-1]}) -> `{s.variable}`"
                     + (", level estimated" if s.scale is None else f", x {s.scale:g}")
                     + (f", sigma fixed {s.sigma:g}" if s.sigma is not None else f", group {s.group}")
                     + (f". {s.note}" if s.note else ""))
    for d in t.dropped:
        lines.append(f"- dropped: `{d.file}`: {d.reason}")
    if t.inputs:
        lines += ["", "Dated policy inputs (fixed): " + "; ".join(f"{k} = {v:g}" for k, v in t.inputs.items())]
    lines += ["", "Wall time (s): " + ", ".join(f"{k} {v:.1f}" for k, v in cal.seconds.items()), "",
              "Figures: `fit.png` (model vs data with posterior bands), `residuals.png`, `profiles.png`, "
              "`holdout.png` (each also as PDF)."]
    return "\n".join(lines) + "\n"


def write_report(cal: Calibration, run_dir: str | Path) -> None:
    """Every table, figure and the summary of ``cal`` into ``run_dir``."""
    from calibration.run import posterior_csv

    run_dir = Path(run_dir)
    r = cal.result
    write_csv(cal.statistics, run_dir / "fit_statistics.csv", index=False, float_format="%.6g")
    write_csv(cal.parameters, run_dir / "parameters.csv", index=False, float_format="%.6g")
    write_csv(r.starts_table(), run_dir / "starts.csv", index=False, float_format="%.8g")
    write_csv(r.prediction.frame, run_dir / "residuals.csv", index=False, float_format="%.8g")
    profiles = pd.concat([p.points.assign(parameter=p.name) for p in cal.profiles], ignore_index=True)
    write_csv(profiles, run_dir / "profiles.csv", index=False, float_format="%.8g")
    write_csv(cal.holdout_points, run_dir / "out_of_sample_points.csv", index=False, float_format="%.8g")
    write_csv(cal.holdout_summary, run_dir / "out_of_sample.csv", index=False, float_format="%.6g")
    write_csv(cal.best_frame, run_dir / "trajectory.csv", float_format="%.8g")
    name = cal.targets.path.stem
    write_table(cal.statistics, run_dir / "fit_statistics", csv=False, label=f"tab:{name}-fit",
                caption=f"Calibration of {name}: fit statistics per series")
    write_table(cal.parameters, run_dir / "parameters", csv=False, label=f"tab:{name}-parameters",
                caption=f"Calibration of {name}: estimated parameters")
    write_table(cal.holdout_summary, run_dir / "out_of_sample", csv=False, label=f"tab:{name}-holdout",
                caption=f"Calibration of {name}: out-of-sample checks")
    if cal.posterior is not None:
        atomic_write_text(run_dir / "posterior.csv", posterior_csv(cal, max_rows=len(cal.posterior.draws)))
        write_csv(cal.posterior.summary(), run_dir / "posterior_summary.csv", index=False, float_format="%.6g")
        write_table(cal.posterior.summary(), run_dir / "posterior_summary", csv=False, label=f"tab:{name}-posterior",
                    caption=f"Calibration of {name}: posterior summary")
        bands = pd.concat([b.assign(series=name) for name, b in cal.bands.items()], ignore_index=True)
        write_csv(bands, run_dir / "predictive_bands.csv", index=False, float_format="%.8g")
    save_figure(fit_figure(cal), run_dir / "fit")
    save_figure(residual_figure(cal), run_dir / "residuals")
    save_figure(profile_figure(cal), run_dir / "profiles")
    save_figure(holdout_figure(cal), run_dir / "holdout")
    atomic_write_text(run_dir / "fitted.toml", fitted_case_text(cal))
    atomic_write_text(run_dir / "fitted.history.toml", history_case_text(cal))
    atomic_write_text(run_dir / "report.md", summary_markdown(cal))
    t = cal.targets
    post = cal.posterior
    write_json(manifest(
        models={"model": t.model},
        runs={"fitted": r.params},
        inputs={"targets": t.path, **({"case": t.case} if t.case else {}),
                **{s.name: s.file for s in t.series}},
        seeds={"seed": cal.seed},
        command=sys.argv,
        notes={"nll": r.nll, "converged": r.converged, "evaluations": r.evaluations,
               "seconds": cal.seconds, "engine": r.engine, "parity_max_rel_diff": cal.parity,
               "posterior": None if post is None else {
                   "walkers": post.walkers, "steps": post.steps, "burn": post.burn, "draws": len(post.draws),
                   "acceptance": post.acceptance, "tau": post.tau, "ess": post.ess, "rhat": post.rhat,
                   "reliable": post.reliable}},
    ), run_dir / "manifest.json")
    write_index(run_dir, INDEX)


INDEX = {  # what each file of a calibration run directory shows (index.md)
    "fit_statistics.csv": "fit statistics per series: n, RMSE, MAPE, R², Theil inequality shares (UM, US, UC)",
    "parameters.csv": "estimated parameters: maximum-likelihood value, 95% profile-likelihood interval, bounds",
    "starts.csv": "every optimizer start and where it ended",
    "residuals.csv": "model against data, point by point",
    "profiles.csv": "profile likelihood of each estimated parameter",
    "out_of_sample_points.csv": "held-out points: data against prediction",
    "out_of_sample.csv": "out-of-sample error per series",
    "trajectory.csv": "the best fit's run over time",
    "posterior.csv": "the posterior draws (emcee) with their log-probability",
    "posterior_summary.csv": "posterior mean, sd and quantiles of each parameter, with convergence diagnostics",
    "predictive_bands.csv": "posterior predictive bands of each series over time",
    "fitted.toml": "the fitted values as a case layer (copied to calibration/fitted/)",
    "fitted.history.toml": "the dated policy inputs the fit assumed",
    "report.md": "the calibration summary",
    "fit": "model against data with posterior bands",
    "residuals": "residuals over time",
    "profiles": "profile likelihood of each estimated parameter",
    "holdout": "out-of-sample check",
}
