"""The run monitor: progress, curves, confusion matrix, log, live channel."""
