"""The live channel: the engine's local socket server and the Qt-free client (docs/protocol.md)."""
