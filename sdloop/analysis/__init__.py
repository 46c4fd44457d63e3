"""Analysis of a model structure: feedback loops, polarity, dominance, equilibria, checks."""
