"""Layer 2: the frozen model structure (stocks, flows, auxiliaries as sympy equations) and units."""
