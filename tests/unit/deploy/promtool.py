"""promtool for the tests: found on PATH or fetched once by deploy/local/promtool.sh.

A test that needs promtool never skips quietly: where apt can fetch Debian's
``prometheus`` package, the script does so (``make test`` runs it too); only a machine
without apt/dpkg skips, and the skip says why.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
INSTALLER = ROOT / "deploy" / "local" / "promtool.sh"
NO_APT = 3  # the installer's exit code when this machine has no apt-get/dpkg-deb


@dataclass(frozen=True)
class Checked:
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@cache
def _locate() -> tuple[str | None, str]:
    result = subprocess.run(
        [str(INSTALLER), "ensure"], capture_output=True, text=True, timeout=600, check=False
    )
    path = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else None
    if result.returncode == 0 and path:
        return path, ""
    return None, f"exit {result.returncode}: {result.stderr.strip()}"


def promtool_path() -> str:
    """The promtool binary; skips only where apt is missing, fails where fetching broke."""
    path, why = _locate()
    if path:
        return path
    if why.startswith(f"exit {NO_APT}:"):
        pytest.skip(f"promtool unavailable and no apt here to fetch it ({why})")
    pytest.fail(f"deploy/local/promtool.sh could not provide promtool ({why})")


def promtool(*args: str, stdin: str | None = None, cwd: Path = ROOT) -> Checked:
    result = subprocess.run(
        [promtool_path(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )
    return Checked(result.returncode, result.stdout + result.stderr)
