"""Layer 3: engines that run a model: PySD (reference) and the generated vectorized numpy engine."""
