"""The README's main-job command, exactly as written, on a fresh clone: it installs what it needs and the demo passes.

The clone is of the repository's committed HEAD (what a newcomer gets), in a temporary directory;
the command creates its own virtual environment there, so this test takes a few minutes (most of it
pip installing) and needs PyPI, like a newcomer's first run.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
README_TIMEOUT_S = 900.0


def _main_job_command() -> str:
    """The first command of the README's set-up block: the one that runs the main job."""
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Set up.*?```sh\n(.*?)```", readme, re.DOTALL)
    assert block is not None, "README.md has no '## Set up' section with a sh block"
    commands = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert len(commands) == 2, f"README.md must give exactly two set-up commands, not {commands}"
    return commands[0]


def test_the_readme_main_job_command_runs_the_demo_on_a_fresh_clone(tmp_path: Path) -> None:
    """``./run demo`` on a fresh clone exits 0 and ends with the result table and the audited ledger."""
    git = shutil.which("git")
    if git is None:
        pytest.fail("git not found: install it: apt-get install -y git", pytrace=False)
    clone = tmp_path / "carbonlink"
    subprocess.run([git, "clone", "--quiet", str(REPOSITORY), str(clone)], check=True, timeout=120)  # noqa: S603
    command = _main_job_command()
    assert command == "./run demo"
    result = subprocess.run(  # noqa: S603 - the README's own command, in the clone
        ["/bin/bash", "-c", command],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=README_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert re.search(r"^total\s.*\sok$", result.stdout, re.MULTILINE), result.stdout[-4000:]
    assert "passes 'carbonlink audit'" in result.stdout
    assert (clone / ".venv" / "bin" / "carbonlink").exists()
