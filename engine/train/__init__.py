"""The training loop and the plain functions it shares between stage kinds:
optimizers and schedules, freezing, augmentation, metrics."""
