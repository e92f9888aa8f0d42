"""Feature engineering: pure, vectorised functions over the canonical frames."""
