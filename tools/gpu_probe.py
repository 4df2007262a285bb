"""Is there an NVIDIA GPU on this machine? The probe that decides whether tox's gpu
environments install their CUDA builds and run, or skip in one line (toxfile.py).

    python tools/gpu_probe.py [--env NAME]    the GPUs found, or the skip line; exit 0 either way

A GPU counts when the NVIDIA driver lists it: ``nvidia-smi -L`` prints one ``GPU i: ...``
line per GPU; where nvidia-smi is not installed (a container given the driver only), each
folder of ``/proc/driver/nvidia/gpus`` is one GPU. ``CUDA_VISIBLE_DEVICES`` set to an empty
string or to ``-1`` hides every GPU from the frameworks, so from the probe too. Nothing is
imported from a framework: the probe runs before any of them is installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

#: the tox environments that install from the GPU lock, which toxfile.py skips without a GPU
#: (tests/test_tox_envs.py checks tox.ini against it)
GPU_ENVS = frozenset({"gpu", "gpu-check"})
PROC_GPUS = Path("/proc/driver/nvidia/gpus")
SMI = "nvidia-smi"
TIMEOUT_S = 30


class Probe(NamedTuple):
    """The GPUs found (one line each, as the driver names them), or why there is none."""

    gpus: tuple[str, ...]
    why_none: str


def nvidia_gpus(
    environ: Mapping[str, str] = os.environ, smi: str = SMI, proc: Path = PROC_GPUS
) -> Probe:
    """The NVIDIA GPUs visible here: ``nvidia-smi -L``'s GPU lines, else /proc's GPU folders."""
    hidden = environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and (hidden.strip() == "" or hidden.strip().startswith("-1")):
        return Probe((), f"CUDA_VISIBLE_DEVICES={hidden!r} hides every GPU")
    path = shutil.which(smi, path=environ.get("PATH"))
    if path is not None:
        try:
            done = subprocess.run(
                [path, "-L"], capture_output=True, text=True, timeout=TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            return Probe((), f"`{smi} -L` did not answer in {TIMEOUT_S} s")
        gpus = tuple(line.strip() for line in done.stdout.splitlines() if line.startswith("GPU "))
        if gpus:
            return Probe(gpus, "")
        said = (done.stderr.strip() or done.stdout.strip() or "nothing").splitlines()[0]
        return Probe((), f"`{smi} -L` lists no GPU (exit {done.returncode}: {said})")
    folders = sorted(p.name for p in proc.iterdir()) if proc.is_dir() else []
    if folders:
        return Probe(tuple(f"GPU at PCI {name} ({proc})" for name in folders), "")
    return Probe((), f"no {smi} on the PATH and no {proc}")


def skip_line(env: str, probe: Probe) -> str:
    """The one line a gpu environment prints instead of installing and running."""
    return (
        f"{env}: skipped: no NVIDIA GPU on this machine ({probe.why_none}); it installs the "
        f"CUDA builds and runs only where one is"
    )


def main(argv: list[str] | None = None) -> int:
    """Print the GPUs found, one a line, or the skip line; exit 0 either way."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="gpu", help="the tox environment the line is for")
    args = parser.parse_args(argv)
    probe = nvidia_gpus()
    print("\n".join(probe.gpus) if probe.gpus else skip_line(args.env, probe))
    return 0


if __name__ == "__main__":
    sys.exit(main())
