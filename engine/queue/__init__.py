"""The queue of plans: the runner process that starts them one after another (or side by
side on free GPUs) and the rule that decides which starts (docs/cli.md, "The queue")."""
