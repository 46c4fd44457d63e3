"""Steady states and eigenvalues with known answers."""

from __future__ import annotations

import numpy as np

from analysis_helpers import run, structure
from sdloop.analysis.equilibria import eigenvalues_along, equilibria, stock_system


def test_goal_seeking_settles_at_the_goal():
    (eq,) = equilibria(structure("goal_seeking.mdl"))
    assert eq.state == {"Level": 100.0}
    np.testing.assert_allclose(eq.eigenvalues, [-1 / 5])
    assert eq.stable and eq.method == "symbolic"


def test_logistic_has_an_unstable_and_a_stable_state():
    found = {round(e.state["Population"]): e for e in equilibria(structure("logistic_growth.mdl"))}
    assert set(found) == {0, 1000}
    np.testing.assert_allclose(found[0].eigenvalues, [0.5])
    np.testing.assert_allclose(found[1000].eigenvalues, [-0.5])
    assert not found[0].stable and found[1000].stable


def test_oscillator_eigenvalues_are_imaginary_with_the_analytic_frequency():
    (eq,) = equilibria(structure("oscillator.mdl"))
    omega = np.sqrt(4.0)  # sqrt(stiffness)
    np.testing.assert_allclose(sorted(eq.eigenvalues.imag), [-omega, omega])
    np.testing.assert_allclose(eq.eigenvalues.real, 0, atol=1e-12)
    along = eigenvalues_along(structure("oscillator.mdl"), run("oscillator.mdl"), [0.0, 5.0])
    for values in along.values():
        np.testing.assert_allclose(sorted(values.imag), [-omega, omega])


def test_the_simulated_oscillation_has_that_frequency():
    r = run("oscillator.mdl")
    position = r["Position"]
    crossings = r.times[1:][np.diff(np.sign(position)) != 0]
    period = 2 * np.mean(np.diff(crossings))
    np.testing.assert_allclose(2 * np.pi / period, 2.0, rtol=1e-2)


def test_jacobian_along_the_logistic_run():
    s = structure("logistic_growth.mdl")
    r = run("logistic_growth.mdl")
    values = eigenvalues_along(s, r, [0.0])
    (eig,) = values[0.0]
    np.testing.assert_allclose(eig, 0.5 * (1 - 2 * 10 / 1000))


def test_sir_disease_free_states_leave_s_and_r_free():
    (eq,) = equilibria(structure("sir.mdl"))
    assert eq.state["Infected"] == 0 and set(eq.free) == {"Susceptible", "Recovered"}


def test_numeric_fallback_with_a_lookup(tmp_path):
    from sdloop.structure.build import build_structure

    model = tmp_path / "lookup_goal.mdl"
    text = (structure("goal_seeking.mdl").path).read_text().replace(
        "adjustment = gap / adjustment time", "adjustment = response(gap) / adjustment time")
    text = text.replace("goal = 100", "response([(-200,-200)-(200,200)],(-200,-200),(0,0),(200,200))\n"
                                      "\t~\tWidget\n\t~\tAssumed (test fixture).\n\t|\n\ngoal = 100")
    model.write_text(text)
    s = build_structure(model)
    assert stock_system(s).derivatives.has(type(s["response"].lookup(0)).__base__)
    (eq,) = equilibria(s, seed=1)
    assert eq.method == "numeric"
    np.testing.assert_allclose(eq.state["Level"], 100.0)
