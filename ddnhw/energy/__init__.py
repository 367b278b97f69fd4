"""Energy per inference: activity from the gate-level netlist on real inputs, per-family
coefficients from published measurements (see README "## Energy")."""
