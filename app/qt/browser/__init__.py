"""The experiment browser."""
