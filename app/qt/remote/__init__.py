"""The window's remote side: targets (dialog, picker), runs started there, fetching outputs."""
