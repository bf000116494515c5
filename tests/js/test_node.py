"""The TV page's JavaScript unit tests (tests/js/*.test.mjs), run by Node's built-in test runner.

Here rather than as a separate `node --test` step in the Makefile: `make test` stays one command with
one report, `PYTEST_ARGS="-k node"` selects them like any test, and a missing Node is handled like a
missing Chromium (tests/e2e/conftest.py): skipped with the reason, a failure under CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def test_javascript_unit_tests_pass():
    node = shutil.which("node")
    if node is None:
        message = "node not found: `make test` installs Debian's nodejs when run as root (the JS tests need it)."
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    files = sorted(str(path.relative_to(ROOT)) for path in HERE.glob("**/*.test.mjs"))
    assert files, "no tests/js/*.test.mjs found"
    # Files, not the folder: Node 18 (Debian 12's) and 20 take a folder, Node 22 takes glob patterns.
    result = subprocess.run(  # noqa: S603 - node from PATH, our own test files
        [node, "--test", *files], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"node --test failed ({result.returncode}):\n{result.stdout}\n{result.stderr}", pytrace=False)
