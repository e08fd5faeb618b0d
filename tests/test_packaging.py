"""What the wheel and the desktop need: every source package is listed for the wheel, the
icon comes in every size from its SVG, the desktop entry and AppStream metainfo are
well-formed, `stagelab desktop-install` puts them where desktops look and takes them back,
and a frozen Stagelab starts its engine from its own executable."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from engine.resources import icon_path, resources_dir

ROOT = Path(__file__).resolve().parents[1]
APP_ID = "io.github.stagelab.Stagelab"


def test_every_source_package_is_in_the_wheel_list():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("app", "engine")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert found | {"stagelab_resources"} == set(config["packages"])
    assert config["package-dir"] == {"stagelab_resources": "resources"}


def test_icons_in_every_size_and_well_formed_desktop_files():
    from PySide6.QtGui import QImage

    assert icon_path().read_text().lstrip().startswith("<?xml")
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        image = QImage(str(icon_path(size)))
        assert (image.width(), image.height()) == (size, size)
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(resources_dir() / "desktop" / f"{APP_ID}.desktop")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application" and desktop["Icon"] == APP_ID
    assert desktop["Exec"].startswith("stagelab ") and desktop["Categories"].endswith(";")
    meta = ET.parse(resources_dir() / "desktop" / f"{APP_ID}.metainfo.xml").getroot()
    assert meta.get("type") == "desktop-application" and meta.findtext("id") == APP_ID
    assert meta.find("launchable").text == f"{APP_ID}.desktop"


def test_desktop_install_and_uninstall(tmp_path):
    env_home = tmp_path / "share"
    cmd = [sys.executable, "-m", "engine.cli", "desktop-install"]
    env = {"XDG_DATA_HOME": str(env_home), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    assert "installed 11 file(s)" in out
    entry = (env_home / "applications" / f"{APP_ID}.desktop").read_text()
    exec_line = next(line for line in entry.splitlines() if line.startswith("Exec="))
    assert Path(exec_line.split()[0].removeprefix("Exec=").strip('"')).name == "stagelab"
    assert (env_home / f"icons/hicolor/256x256/apps/{APP_ID}.png").is_file()
    assert (env_home / f"icons/hicolor/scalable/apps/{APP_ID}.svg").is_file()
    subprocess.run([*cmd, "--uninstall"], env=env, capture_output=True, check=True)
    assert not any(p.is_file() for p in env_home.rglob("*"))


def test_a_frozen_stagelab_runs_its_engine_from_its_own_executable(monkeypatch):
    from engine.launch.runs import engine_command, module_command
    from engine.store.workspace import Workspace

    assert module_command("engine") == [sys.executable, "-m", "engine"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/stagelab/stagelab")
    cmd = engine_command(Workspace(Path("/w")), "abc", resume=True)
    assert cmd == [
        "/opt/stagelab/stagelab",
        "--engine",
        "run",
        "--workspace",
        "/w",
        "--run",
        "abc",
        "--resume",
    ]
    assert module_command("app") == ["/opt/stagelab/stagelab", "--app"]


@pytest.mark.skipif(
    not (shutil.which("desktop-file-validate") and shutil.which("appstreamcli")),
    reason="needs desktop-file-utils and appstream (installed by .ci/run)",
)
def test_desktop_files_pass_the_freedesktop_validators():
    folder = resources_dir() / "desktop"
    entry = subprocess.run(
        ["desktop-file-validate", str(folder / f"{APP_ID}.desktop")], capture_output=True, text=True
    )
    assert entry.returncode == 0 and not entry.stdout.strip(), entry.stdout
    meta = subprocess.run(
        ["appstreamcli", "validate", "--no-net", str(folder / f"{APP_ID}.metainfo.xml")],
        capture_output=True,
        text=True,
    )
    assert meta.returncode == 0, meta.stdout + meta.stderr
