"""Scripts that run in the target's Python (stdlib only; sent with `python -c`): what is
there (`PROBE`), and unpacking this install's wheel into the workdir (`UNPACK`)."""

from __future__ import annotations

# argv[1]: JSON {workdir, dists, install}. Prints JSON: the Python, the workdir expanded,
# Stagelab importable and its version, the dependencies missing, GPUs (NVML), disk free.
PROBE = r"""
import importlib.metadata as md, importlib.util, json, os, shutil, sys
a = json.loads(sys.argv[1])
wd = os.path.abspath(os.path.expanduser(a["workdir"]))
out = {"python": sys.executable, "version": list(sys.version_info[:3]), "workdir": wd}
try:
    out["stagelab"] = md.version("stagelab") if importlib.util.find_spec("engine") else None
except Exception:
    out["stagelab"] = None
out["installed"] = os.path.isfile(os.path.join(wd, a["install"], ".complete"))
missing, have = [], {}
for d in a["dists"]:
    try:
        have[d] = md.version(d)
    except Exception:
        missing.append(d)
out["missing"], out["have"] = missing, have
gpus = []
try:
    import pynvml as n
    n.nvmlInit()
    for i in range(n.nvmlDeviceGetCount()):
        h = n.nvmlDeviceGetHandleByIndex(i)
        name = n.nvmlDeviceGetName(h)
        m = n.nvmlDeviceGetMemoryInfo(h)
        gpus.append({"index": i, "name": name.decode() if isinstance(name, bytes) else name,
                     "total": m.total, "free": m.free})
except Exception:
    pass
out["gpus"] = gpus
p = wd
while not os.path.exists(p) and os.path.dirname(p) != p:
    p = os.path.dirname(p)
out["disk_free"] = shutil.disk_usage(p).free
print(json.dumps(out))
"""

# argv[1]: the wheel there, argv[2]: the folder to install it in. Unpacks beside the
# folder and renames it into place, so a folder is there whole or not at all.
UNPACK = r"""
import os, shutil, sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
part = dest + ".part.%d" % os.getpid()
try:
    with zipfile.ZipFile(whl) as z:
        z.extractall(part)
    open(os.path.join(part, ".complete"), "w").close()
    if os.path.isdir(dest):
        shutil.rmtree(part)
    else:
        os.rename(part, dest)
finally:
    shutil.rmtree(part, ignore_errors=True)
    os.unlink(whl)
"""
