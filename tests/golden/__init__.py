"""Golden shares: deterministic cases (cases.py), the file (shares.npz) and its maker (make_golden.py)."""
