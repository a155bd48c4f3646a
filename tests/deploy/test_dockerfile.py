"""The container definition: hadolint passes with no warning, and the files
a PaaS reads agree with the Dockerfile. (No Docker engine runs here, so the
image itself is not built; see docs/deploy.md for the one-command check.)"""

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_hadolint_passes_without_warnings():
    result = subprocess.run(
        ["hadolint", "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_the_runtime_runs_as_a_numeric_non_root_user_and_bakes_no_secret():
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users and all(part.isdigit() and part != "0" for part in users[-1].split(":"))
    assert "CHARLA_API_TOKEN" not in dockerfile


def test_app_json_describes_every_setting():
    app = json.loads((ROOT / "app.json").read_text())
    assert app["stack"] == "container"
    help_text = subprocess.run(
        [str(ROOT / "target" / "release" / "charla"), "--help"], capture_output=True, text=True, check=True
    ).stdout
    documented = set(app["env"])
    for line in help_text.splitlines():
        if "[env: " in line:
            variable = line.split("[env: ")[1].split("=")[0].split("]")[0]
            if variable != "PORT":  # set by the platform itself
                assert variable in documented, f"{variable} missing from app.json"
    assert all(entry.get("description") for entry in app["env"].values())


def test_dockerignore_keeps_the_build_context_small():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "target/" in ignored and "node_modules/" in ignored
