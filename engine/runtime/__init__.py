"""What a stage runs inside, below the training loop: the run's context and control, the
recorder, checkpoints and their writer thread, the process group of a several-process run,
and stage fingerprints. Imports models, data, channel, store and spec only."""
