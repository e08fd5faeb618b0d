"""The Sweep view: a sweep's trials, the objective over trials, a parameter against the
objective; opens the best trial's plan and compares selected trials."""
