"""The command line: `stagelab` and its commands. No torch, no Qt: commands
answer at once, and training runs in its own engine process."""
