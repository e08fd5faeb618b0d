"""The workspace's settings file, `<workspace>/settings.yaml` (docs/cli.md,
"Notifications"). Today it holds the notifications:

    notify:
      command: "notify-send \"$STAGELAB_RUN $STAGELAB_EVENT\" \"$STAGELAB_MESSAGE\""
      min_seconds: 60     # runs shorter than this notify nothing (default 60)
      desktop: true       # the window's desktop notifications (default true)

A missing file is the defaults; a broken one is the defaults and one sentence saying why,
so a typo never stops a run. A run started on a target carries the desktop's settings in
`STAGELAB_NOTIFY` (JSON), which its engine there reads before any file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

SETTINGS_FILE = "settings.yaml"
NOTIFY_ENV = "STAGELAB_NOTIFY"
DEFAULT_MIN_SECONDS = 60.0


@dataclass(frozen=True)
class NotifySettings:
    """When and how runs notify."""

    command: str | None = None
    min_seconds: float = DEFAULT_MIN_SECONDS
    desktop: bool = True
    problem: str | None = None  # why the file was not used, if it was not


def notify_settings(root: Path) -> NotifySettings:
    """The notification settings of the workspace at `root`."""
    import yaml

    path = Path(root) / SETTINGS_FILE
    carried = os.environ.get(NOTIFY_ENV)
    if not carried and not path.is_file():
        return NotifySettings()
    try:
        if carried:  # the desktop's, travelling with a run on a target
            path = Path(NOTIFY_ENV)
            data = {"notify": json.loads(carried)}
        else:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError("it must be a mapping with a notify: section")
        notify = data.get("notify") or {}
        if not isinstance(notify, dict):
            raise ValueError("'notify' must be a mapping such as {command: ..., min_seconds: 60}")
        command = notify.get("command")
        if command is not None and not isinstance(command, str):
            raise ValueError("notify.command must be one shell command line (a string)")
        min_seconds = float(notify.get("min_seconds", DEFAULT_MIN_SECONDS))
        return NotifySettings(command or None, min_seconds, bool(notify.get("desktop", True)))
    except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:  # JSONDecodeError too
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return NotifySettings(problem=f"{path} was not used ({reason}); fix it to get notified")


def notify_env(root: Path) -> dict[str, str]:
    """The environment that carries this workspace's notify settings to a run's engine on a
    target (empty when there is no command to run)."""
    settings = notify_settings(root)
    if not settings.command:
        return {}
    fields = {k: v for k, v in asdict(settings).items() if k != "problem"}
    return {NOTIFY_ENV: json.dumps(fields)}
