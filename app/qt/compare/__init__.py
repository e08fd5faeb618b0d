"""Compare runs: overlaid curves and a plan diff."""
