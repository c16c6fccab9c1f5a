"""Answers for chip designers: the as-built twin, error budgets, ε calibration, technology
presets, and in-situ vs offline training under mismatch."""
