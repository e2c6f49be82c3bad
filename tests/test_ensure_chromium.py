"""`make test` on a fresh machine: scripts/ensure_chromium.sh installs the Chromium the browser
tests drive (as root, with apt-get) or stops the run saying exactly what to install.

The script runs with `id` and `apt-get` replaced by stand-ins on PATH, so nothing is
installed and the answer does not depend on who runs the suite."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "ensure_chromium.sh"


def stand_in(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def run(tmp_path: Path, *, uid: int, chromium: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stand_in(bin_dir, "id", f"echo {uid}")
    # An apt-get that "installs" Chromium where the script looks for it, and notes its call.
    stand_in(
        bin_dir,
        "apt-get",
        f'echo "$@" >> {tmp_path}/apt-get.log\n'
        f'if [ "$1" = install ]; then printf "#!/bin/sh\\necho Chromium 1\\n" > {chromium}; '
        f"chmod +x {chromium}; fi",
    )
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "CHROMIUM_PATH": str(chromium)}
    return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, check=False)


def test_an_installed_chromium_is_left_alone(tmp_path):
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\necho Chromium 1\n")
    chromium.chmod(0o755)

    result = run(tmp_path, uid=0, chromium=chromium)

    assert result.returncode == 0
    assert not (tmp_path / "apt-get.log").exists()


def test_root_gets_chromium_installed_with_apt_get(tmp_path):
    chromium = tmp_path / "chromium"

    result = run(tmp_path, uid=0, chromium=chromium)

    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "apt-get.log").read_text().splitlines()
    assert calls[0] == "update -qq"
    assert calls[1].startswith("install -y") and calls[1].endswith("chromium")


def test_anyone_else_is_told_exactly_what_to_run_and_the_run_stops(tmp_path):
    chromium = tmp_path / "chromium"

    result = run(tmp_path, uid=1000, chromium=chromium)

    assert result.returncode == 1
    assert (
        "sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium"
        in result.stderr
    )
    assert not (tmp_path / "apt-get.log").exists()


def test_make_test_checks_chromium_before_running_the_suite():
    recipe = (ROOT / "Makefile").read_text().split("\ntest: install\n", 1)[1].split("\n\n")[0]
    lines = [line.strip() for line in recipe.splitlines()]
    assert lines[0] == "sh scripts/ensure_chromium.sh"
    assert "pytest" in lines[1]
