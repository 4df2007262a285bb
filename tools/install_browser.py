"""Install Debian's Chromium for the report's browser tests, when it is missing.

Run by ``tox -e tests`` before pytest. Playwright drives ``/usr/bin/chromium`` (it never
downloads a browser of its own). Installing needs root and apt; without them this prints
why and exits 0, and the browser tests skip -- unless ``XENTCHECK_REQUIRE_BROWSER=1``
(set by CI), in which case a missing browser fails here and in the tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

CHROMIUM = "/usr/bin/chromium"


def main() -> int:
    required = os.environ.get("XENTCHECK_REQUIRE_BROWSER") == "1"
    if os.path.exists(CHROMIUM):
        return 0
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        why = "apt-get is not available" if shutil.which("apt-get") is None else "not root"
        print(
            f"install_browser: {CHROMIUM} missing and {why}; browser tests will skip "
            "(install Debian's chromium to run them)",
            file=sys.stderr,
        )
        return 1 if required else 0
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
    ):
        r = subprocess.run(cmd, env=env, check=False)
        if r.returncode != 0:
            print(f"install_browser: {' '.join(cmd)} failed ({r.returncode})", file=sys.stderr)
            return 1 if required else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
