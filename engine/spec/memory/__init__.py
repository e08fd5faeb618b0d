"""A stage's GPU memory estimated from its plan settings alone (docs/memory.md): the
model's shape (`shapes.py`), its parameters (`parameters.py`) and the bytes it needs while
it trains (`estimate.py`). No torch, no Qt, no database: `stagelab validate` warns with it,
the window's inspector shows it."""
