"""Training elsewhere: targets (an SSH machine, a Slurm cluster), the OpenSSH shell, file
sync, Slurm submission and the mirror of a remote run into the local store. No torch."""
