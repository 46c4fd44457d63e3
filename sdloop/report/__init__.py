"""Layer 5: run directories, tables and figures (the only layer that imports matplotlib)."""
