"""Stagelab's shipped resources: plan templates, the demo data, icons and the desktop
entry. Installed as the package `stagelab_resources`; found with `importlib.resources`
(see engine/resources.py)."""
