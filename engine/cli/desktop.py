"""`stagelab desktop-install`: put Stagelab in the Linux desktop's application menu (the
.desktop entry, the icon in every size, the AppStream metainfo) under the user's data
folder (XDG_DATA_HOME, default ~/.local/share). No root, undone by `--uninstall`."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from engine.resources import resources_dir

APP_ID = "io.github.stagelab.Stagelab"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def launcher() -> str:
    """The command the menu entry runs: this installation's `stagelab`."""
    if getattr(sys, "frozen", False):
        return sys.executable
    found = Path(sys.executable).with_name("stagelab")
    return str(found) if found.exists() else shutil.which("stagelab") or "stagelab"


def targets(home: Path) -> dict[Path, Path]:
    """Installed file -> shipped file."""
    res = resources_dir()
    out = {
        home / "applications" / f"{APP_ID}.desktop": res / "desktop" / f"{APP_ID}.desktop",
        home / "metainfo" / f"{APP_ID}.metainfo.xml": res / "desktop" / f"{APP_ID}.metainfo.xml",
        home / "icons/hicolor/scalable/apps" / f"{APP_ID}.svg": res / "icons" / "stagelab.svg",
    }
    for size in SIZES:
        out[home / f"icons/hicolor/{size}x{size}/apps/{APP_ID}.png"] = (
            res / "icons" / f"stagelab-{size}.png"
        )
    return out


def install(uninstall: bool = False) -> list[Path]:
    """Install (or remove) the desktop files; returns the paths written (or removed)."""
    done = []
    for target, source in targets(data_home()).items():
        if uninstall:
            if target.exists():
                target.unlink()
                done.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix == ".desktop":
            # Exec names this installation, so the entry works without `stagelab` on PATH.
            text = source.read_text(encoding="utf-8").replace(
                "Exec=stagelab ", f"Exec={_quoted(launcher())} "
            )
            target.write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(source, target)
        done.append(target)
    return done


def _quoted(path: str) -> str:
    return f'"{path}"' if " " in path else path
