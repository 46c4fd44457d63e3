"""Layer 4: cases, strategies and scenarios, metrics, ensembles and sensitivity."""
