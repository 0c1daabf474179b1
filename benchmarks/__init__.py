"""`make bench`: measured figures for speed and memory goals (never asserted in tests)."""
