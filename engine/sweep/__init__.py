"""Sweeps: trials of a plan with settings drawn from a space (Optuna's samplers and median
pruner), each trial an ordinary run. The sweep process (`python -m engine sweep`) starts
one engine per trial and follows them through the store; it never imports torch."""
