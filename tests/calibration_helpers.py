"""Synthetic calibration problems on tests/fixtures/calibration/diffusion.mdl."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "calibration"
MODEL = FIXTURE / "diffusion.mdl"
TRUE = {"Adoption Rate": 0.4, "Market Size": 200.0}
YEARS = list(range(2001, 2020))
NOISE = 0.08  # log-normal noise of the synthetic data


def synthetic_data(tmp_path: Path, seed: int) -> Path:
    """CSV files of Adopters and Adoption drawn from TRUE plus log-normal noise."""
    from sdloop.engines.pysd_model import load_model

    frame = load_model(MODEL).run(TRUE, final_time=2021, columns=["Adopters", "Adoption"])
    rng = np.random.default_rng(seed)
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    for variable, name in (("Adopters", "adopters.csv"), ("Adoption", "adoption.csv")):
        lines = ["year,value,unit,source,note,memory_unverified"]
        t = frame.index.to_numpy(float)
        v = frame[variable].to_numpy(float)
        for y in YEARS:
            mask = (t >= y) & (t <= y + 1)
            mean = np.trapezoid(v[mask], t[mask])
            value = mean * np.exp(rng.normal(0, NOISE))
            lines.append(f"{y},{value:.10g},units,synthetic (seed {seed}),,")
        (data / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return data


def targets_text(*, model=MODEL, adopters_variable="Adopters", adoption_file="adoption.csv",
                 rate_bounds=(0.05, 1.5), rate_start=None, error='group = "synthetic"', extra="") -> str:
    start = f"start = {rate_start}\n" if rate_start is not None else ""
    return f'''description = "synthetic recovery"
model = "{model}"
data_dir = "data"

[inputs]
"Initial Adopters" = 5  # fixed input

[[series]]
name = "adopters"
file = "adopters.csv"
variable = "{adopters_variable}"
{error}

[[series]]
name = "adoption"
file = "{adoption_file}"
variable = "Adoption"
{error}
{extra}
[[parameters]]
name = "Adoption Rate"
lower = {rate_bounds[0]}
upper = {rate_bounds[1]}
{start}transform = "log"

[[parameters]]
name = "Market Size"
lower = 50
upper = 1000
transform = "log"
'''


def write_targets(tmp_path: Path, seed: int = 0, **kwargs) -> Path:
    synthetic_data(tmp_path, seed)
    path = tmp_path / "synthetic.toml"
    path.write_text(targets_text(**kwargs), encoding="utf-8")
    return path
