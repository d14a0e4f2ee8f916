"""`make run` on a fresh clone: it installs for minutes before it serves, and says what it does."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
def test_the_first_make_run_says_what_it_is_doing_at_each_step(tmp_path):
    # A dry run with a virtual environment that is not there yet: every step it would take.
    steps = subprocess.run(
        ["make", "-n", "run", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    said = re.findall(r'echo "==> ([^"]+)"', steps)
    assert [s.split(" (")[0].split(" in ")[0] for s in said] == [
        "Creating the virtual environment",
        "Installing KimiChat's dependencies",
        "Preparing the database",
        "Checking for answers left unfinished by a previous run",
        "Collecting static files",
        "Starting KimiChat",
    ]
    # pip is not silenced: it names each package as it fetches and installs it.
    install = next(line for line in steps.splitlines() if "pip install" in line)
    assert " -q" not in install and "--progress-bar on" in install
