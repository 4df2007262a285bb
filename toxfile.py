"""tox's inline plugin (tox 4 loads ``toxfile.py`` beside tox.ini): on a machine without an
NVIDIA GPU the gpu environments install nothing and print one line instead of their commands.

Their installs are gigabytes of CUDA wheels that only a GPU can use, and tox skips an
environment only before its commands, after installing it (and a tox run whose every
environment is skipped exits 1). So, when ``tools/gpu_probe.py`` finds no GPU, this plugin
sets the environment's options first, before tox.ini's: nothing to install, no lock check,
one command that prints why (exit 0). With a GPU it changes nothing.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from tox.config.loader.memory import MemoryLoader
from tox.config.types import Command
from tox.plugin import impl

if TYPE_CHECKING:
    from tox.config.sets import EnvConfigSet
    from tox.session.state import State

_PROBE = Path(__file__).resolve().parent / "tools" / "gpu_probe.py"


def _gpu_probe() -> ModuleType:
    """tools/gpu_probe.py, loaded from its file (tools/ is no package)."""
    spec = importlib.util.spec_from_file_location("xentcheck_gpu_probe", _PROBE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # NamedTuple needs its module registered
    spec.loader.exec_module(module)
    return module


@impl
def tox_add_env_config(env_conf: EnvConfigSet, state: State) -> None:
    """Without a GPU, a gpu environment becomes: no install, the probe's skip line."""
    probe = _gpu_probe()
    if env_conf.env_name not in probe.GPU_ENVS or probe.nvidia_gpus().gpus:
        return
    line = ["python", str(_PROBE), "--env", env_conf.env_name]
    env_conf.loaders.insert(
        0,
        MemoryLoader(
            skip_install=True,
            deps="",
            commands_pre=[],
            commands=[Command(line)],
            commands_post=[],
        ),
    )
