"""The playground's worker: one stage output loaded once, answering requests as JSON
lines (docs/playground.md). The window starts it with QProcess and never imports torch.

    → {"id": 1, "text": "a lovely day", "sampling": {"temperature": 0.7}}
    ← {"event": "ready", "task": "causal_lm", ...}           once, after loading
    ← {"id": 1, "event": "token", "text": " and"}              causal LMs, as generated
    ← {"id": 1, "event": "result", "result": {...}, "seconds": 0.04}
    ← {"id": 1, "event": "error", "message": "..."}            a request it cannot answer
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from engine.predict.folder import OutputError


def send(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def serve(folder: str, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    """Answer requests until stdin closes; 0, or 2 if the folder cannot be loaded."""
    try:
        from engine.predict.predictor import Predictor, Sampling

        predictor = Predictor(folder)
    except OutputError as exc:
        send(stdout, {"event": "error", "message": str(exc)})
        return 2
    send(stdout, {"event": "ready", **predictor.describe()})
    for line in stdin:
        if not line.strip():
            continue
        request_id = None
        try:
            request = json.loads(line)
            request_id = request.get("id")
            sampling = Sampling.from_dict(dict(request.get("sampling") or {}))
            text = str(request.get("text", ""))
            started = time.perf_counter()
            result = predictor.predict(
                text,
                sampling,
                on_token=lambda piece, i=request_id: send(
                    stdout, {"id": i, "event": "token", "text": piece}
                ),
            )
            seconds = round(time.perf_counter() - started, 4)
            send(
                stdout, {"id": request_id, "event": "result", "result": result, "seconds": seconds}
            )
        except (OutputError, ValueError, TypeError, AttributeError) as exc:
            send(stdout, {"id": request_id, "event": "error", "message": str(exc)})
    return 0
