"""The engine process: it owns one run (lock, claim, heartbeat), records it, and
trains its stages one after another through their recipes."""
