"""``trellis plugin new NAME``: names are checked, and what it writes installs with
pip and passes its own tests at once — in an environment of its own, so the
plugin is never installed into the one running this suite."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from click.testing import CliRunner

from trellis.cli import main


def test_bad_taken_and_existing_names_are_refused_and_nothing_is_written(tmp_path):
    runner = CliRunner()
    for name, message in (("Bad-Name", "lower-case letters"), ("sales", "already installed"),
                          ("class", "reserved"), ("x", "2–31 characters")):
        result = runner.invoke(main, ["plugin", "new", name, "--path", str(tmp_path)])
        assert result.exit_code == 2 and message in result.output, (name, result.output)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "trellis-memo").mkdir()
    result = runner.invoke(main, ["plugins", "new", "memo", "--path", str(tmp_path)])
    assert result.exit_code == 1 and "already exists" in result.output
    assert list((tmp_path / "trellis-memo").iterdir()) == []


def test_a_new_plugin_installs_and_passes_its_own_tests(tmp_path):
    result = CliRunner().invoke(main, ["plugin", "new", "memo_pad", "--label", "Memo pad",
                                       "--path", str(tmp_path)])
    assert result.exit_code == 0, result.output
    dist = tmp_path / "trellis-memo_pad"
    assert (dist / "trellis_memo_pad" / "migrations" / "versions" / "0001_memo_pad.py").exists()
    # a fresh environment that sees this one's packages (Trellis and its test fixtures)
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], check=True, capture_output=True, text=True)
    ours = sysconfig.get_paths()["purelib"]
    Path(purelib.stdout.strip(), "trellis-env.pth").write_text(
        f"import site; site.addsitedir({ours!r})\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                                "--quiet", "--no-deps", "-e", str(dist)],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    tests = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:randomly",
                            "-p", "no:cacheprovider", str(dist / "tests")], cwd=tmp_path,
                           capture_output=True, text=True, timeout=900,
                           env={**os.environ, "PYTHONPATH": ""})
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "3 passed" in tests.stdout
