"""What people read about runs: `status` (linkage's state at a glance) and `history` (the runs' reports).

Imports `stages` and below.
"""
