"""tox.ini's gpu and version-set environments, the GPU probe that decides whether the gpu
environments run (tools/gpu_probe.py), and the plugin that skips them without a GPU
(toxfile.py).

The probe is fed a fake ``nvidia-smi`` and a fake driver folder (the driver is what it reads;
no framework is involved). The plugin is checked through the locked tox of ``.venv`` (the
README's, which CI creates), with the GPU hidden by ``CUDA_VISIBLE_DEVICES=`` or a fake
``nvidia-smi`` shown; those tests skip where there is no ``.venv``.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOX = ROOT / ".venv" / "bin" / "tox"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # NamedTuple needs its module registered
    spec.loader.exec_module(module)
    return module


probe = _load("xentcheck_gpu_probe_test", ROOT / "tools" / "gpu_probe.py")
lock = _load("xentcheck_lock_tool", ROOT / "tools" / "lock.py")


def _tox_ini() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tox.ini")
    return config


def _envs(config: configparser.ConfigParser) -> dict[str, configparser.SectionProxy]:
    return {
        s.removeprefix("testenv:"): config[s] for s in config.sections() if s.startswith("testenv:")
    }


def _list(value: str) -> set[str]:
    return {x.strip() for x in re.split(r"[,\n]", value) if x.strip()}


# --- the probe ------------------------------------------------------------------------------


def _fake_smi(folder: Path, stdout: str, code: int = 0, stderr: str = "") -> dict[str, str]:
    """A PATH whose nvidia-smi prints ``stdout`` and exits ``code``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stdout").write_text(stdout)
    (folder / "stderr").write_text(stderr)
    smi = folder / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\ncat '{folder}/stdout'\ncat '{folder}/stderr' >&2\nexit {code}\n")
    smi.chmod(0o755)
    return {"PATH": str(folder)}


def test_nvidia_smi_lists_the_gpus(tmp_path: Path) -> None:
    listing = (
        "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1)\nGPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-2)\n"
    )
    found = probe.nvidia_gpus(_fake_smi(tmp_path, listing), proc=tmp_path / "none")
    assert found.gpus == (
        "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1)",
        "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-2)",
    )
    assert found.why_none == ""


def test_a_failing_nvidia_smi_means_no_gpu_and_says_why(tmp_path: Path) -> None:
    said = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    environ = _fake_smi(tmp_path / "bin", "", code=9, stderr=said)
    proc = tmp_path / "gpus"
    (proc / "0000:01:00.0").mkdir(parents=True)  # the driver folder is not asked when smi is
    found = probe.nvidia_gpus(environ, proc=proc)
    assert found.gpus == ()
    assert found.why_none == f"`nvidia-smi -L` lists no GPU (exit 9: {said})"


def test_without_nvidia_smi_the_driver_folder_counts(tmp_path: Path) -> None:
    proc = tmp_path / "gpus"
    (proc / "0000:01:00.0").mkdir(parents=True)
    found = probe.nvidia_gpus({"PATH": str(tmp_path / "empty")}, proc=proc)
    assert found.gpus == (f"GPU at PCI 0000:01:00.0 ({proc})",)
    nothing = probe.nvidia_gpus({"PATH": str(tmp_path / "empty")}, proc=tmp_path / "no")
    assert nothing.gpus == ()
    assert nothing.why_none == f"no nvidia-smi on the PATH and no {tmp_path / 'no'}"


@pytest.mark.parametrize(("value", "hidden"), [("", True), ("-1", True), ("0", False)])
def test_cuda_visible_devices_can_hide_every_gpu(tmp_path: Path, value: str, hidden: bool):
    environ = {**_fake_smi(tmp_path, "GPU 0: NVIDIA A100 (UUID: GPU-1)\n")}
    environ["CUDA_VISIBLE_DEVICES"] = value
    found = probe.nvidia_gpus(environ, proc=tmp_path / "none")
    assert (found.gpus == ()) is hidden
    if hidden:
        assert found.why_none == f"CUDA_VISIBLE_DEVICES={value!r} hides every GPU"


def test_the_skip_line_is_one_line_naming_the_environment_and_why() -> None:
    line = probe.skip_line("gpu", probe.Probe((), "no nvidia-smi on the PATH and no /proc/x"))
    assert line == (
        "gpu: skipped: no NVIDIA GPU on this machine (no nvidia-smi on the PATH and no "
        "/proc/x); it installs the CUDA builds and runs only where one is"
    )
    assert "\n" not in line


# --- tox.ini ----------------------------------------------------------------------------------


def test_each_version_set_has_its_environment_and_each_environment_its_set() -> None:
    """One name for the set's input, its lock, its environment and its results file."""
    envs = _envs(_tox_ini())
    with_versions = {n for n, s in envs.items() if "{[versions]setenv}" in s.get("setenv", "")}
    sets = {s.name for s in lock.version_sets(ROOT)}
    assert with_versions == sets
    config = _tox_ini()
    assert "requirements/versions/{envname}.txt" in config["versions"]["setenv"]
    assert "reports/versions/{envname}.jsonl" in config["versions"]["out"]
    for name in sets:
        commands = envs[name]["commands"]
        assert commands.startswith("{[frameworks]run} --framework ")
        assert commands.count("--framework") == 1  # one framework: a matrix entry of CI
        assert "{[versions]out}" in commands
        framework = commands.split()[2]
        assert name.startswith(f"{framework}-")
        assert re.fullmatch(r"\d+\.\d+\.\d+(-\w+)?", name.removeprefix(f"{framework}-")), (
            f"{name}: name a set by its full version (tox reads -2.20 as Python 2.20)"
        )


def test_the_gpu_environments_install_from_the_gpu_lock_every_framework_of_the_main_job():
    envs = _envs(_tox_ini())
    gpu_lock = {n for n, s in envs.items() if lock.GPU_LOCK in s.get("setenv", "")}
    assert gpu_lock == {"gpu"}
    shared = {n for n, s in envs.items() if "{[testenv:gpu]setenv}" in s.get("setenv", "")}
    assert gpu_lock | shared == probe.GPU_ENVS == {"gpu", "gpu-check"}
    gpu = envs["gpu"]
    assert gpu["deps"].strip() == f"-r {{toxinidir}}/{lock.GPU_IN}"
    dropped = set(lock.gpu_set(ROOT).drop_extras)
    assert _list(gpu["extras"]) | dropped == _list(envs["main"]["extras"])
    assert not _list(gpu["extras"]) & dropped
    assert "{[frameworks]run} {[frameworks]all}" in gpu["commands"]
    assert "--out {toxinidir}/reports/results-gpu.jsonl" in gpu["commands"]
    assert "xentcheck report {toxinidir}/reports/results-gpu.jsonl" in gpu["commands"]
    assert "--device all" in _tox_ini()["frameworks"]["run"]
    assert envs["gpu-check"]["env_dir"] == "{work_dir}/gpu"


def test_every_lock_check_is_against_the_lock_the_environment_installs_from() -> None:
    config = _tox_ini()
    assert config["testenv"]["commands_pre"] == (
        "python {toxinidir}/tools/lock.py --check --lock {env:PIP_CONSTRAINT}"
    )
    for name, section in _envs(config).items():
        pre = section.get("commands_pre", "{[testenv]commands_pre}")
        assert "{[testenv]commands_pre}" in pre, f"{name} skips the lock check"


# --- the plugin, through tox ------------------------------------------------------------------


def _tox(*args: str, **env: str) -> subprocess.CompletedProcess:
    if not TOX.is_file():
        pytest.skip(
            f"no {TOX} (python3.11 -m venv .venv && .venv/bin/pip install -r requirements/tox.txt)"
        )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TOX_", "VIRTUAL_ENV"))}
    clean.pop("CUDA_VISIBLE_DEVICES", None)
    return subprocess.run(
        [str(TOX), *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_without_a_gpu_tox_e_gpu_installs_nothing_and_says_so_in_one_line(tmp_path: Path):
    done = _tox("-e", "gpu", "--workdir", str(tmp_path / "tox"), CUDA_VISIBLE_DEVICES="")
    assert done.returncode == 0, done.stdout + done.stderr
    skipped = [line for line in done.stdout.splitlines() if "skipped: no NVIDIA GPU" in line]
    assert skipped == [
        "gpu: skipped: no NVIDIA GPU on this machine (CUDA_VISIBLE_DEVICES='' hides every "
        "GPU); it installs the CUDA builds and runs only where one is"
    ]
    assert "pip" not in done.stdout  # nothing installed: no deps, no package
    assert "gpu: OK" in done.stdout


def test_with_a_gpu_the_environments_are_tox_ini_s(tmp_path: Path) -> None:
    fake = _fake_smi(tmp_path / "bin", "GPU 0: NVIDIA H100 (UUID: GPU-1)\n")
    path = f"{fake['PATH']}{os.pathsep}{os.environ.get('PATH', '')}"
    keys = ["-k", "skip_install", "deps", "commands_pre", "commands"]
    shown = _tox("config", "-e", "gpu,gpu-check", *keys, PATH=path)
    assert shown.returncode == 0, shown.stderr
    assert "skip_install = False" in shown.stdout
    assert f"-r {ROOT}/{lock.GPU_IN}" in shown.stdout
    assert f"tools/lock.py --check --lock {ROOT}/{lock.GPU_LOCK}" in shown.stdout
    assert "--device all" in shown.stdout and "--framework onnxruntime" in shown.stdout
    assert "tools/gpu_check.py" in shown.stdout
    hidden = _tox("config", "-e", "gpu,gpu-check", *keys, PATH=path, CUDA_VISIBLE_DEVICES="-1")
    assert hidden.returncode == 0, hidden.stderr
    assert hidden.stdout.count("skip_install = True") == 2
    assert "gpu_probe.py --env gpu-check" in hidden.stdout
    assert "xentcheck run" not in hidden.stdout
