"""`make audit` (scripts/audit_deps.py, run by .ci/run): a known vulnerability in a pinned
package fails CI; a vulnerability service that cannot answer is reported and does not."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "audit_deps.py"


def audit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), **env},
        timeout=300,
        check=False,
    )


def fake_pip_audit(tmp_path: Path, dependencies: list[dict[str, Any]]) -> dict[str, str]:
    """A pip-audit that answers with this report (as the real one does when the service
    answered), and the environment that makes the audit use it."""
    report = tmp_path / "canned.json"
    report.write_text(json.dumps({"dependencies": dependencies, "fixes": []}))
    tool = tmp_path / "pip-audit"
    tool.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys\n"
        "args = sys.argv[1:]\n"
        f"shutil.copy({str(report)!r}, args[args.index('--output') + 1])\n"
        "sys.exit(1 if any(d.get('vulns') for d in "
        f"__import__('json').load(open({str(report)!r}))['dependencies']) else 0)\n"
    )
    tool.chmod(0o755)
    return {"PIP_AUDIT": str(tool)}


def test_an_unreachable_vulnerability_service_is_reported_and_does_not_fail(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on: every request is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proxy = f"http://127.0.0.1:{port}"
    result = audit(
        "--cache-dir", str(tmp_path / "cache"), env={"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith("audit: NOT AUDITED: the vulnerability service could not be reached")
    assert "Traceback" not in result.stdout


def test_a_known_vulnerability_fails_with_each_one_and_its_fix(tmp_path: Path) -> None:
    env = fake_pip_audit(
        tmp_path,
        [
            {"name": "aiohttp", "version": "3.14.5", "vulns": []},
            {
                "name": "requests",
                "version": "2.34.2",
                "vulns": [
                    {
                        "id": "GHSA-aaaa-bbbb-cccc",
                        "aliases": ["CVE-2099-0001"],
                        "fix_versions": ["2.34.3", "2.35.0"],
                        "description": "...",
                    }
                ],
            },
        ],
    )
    result = audit(env=env)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "audit: VULNERABLE requests 2.34.2: GHSA-aaaa-bbbb-cccc (CVE-2099-0001); "
        "fixed in 2.34.3, 2.35.0",
        "audit: FAILED: 1 known vulnerabilities in 1 pinned packages; update requirements.lock",
    ]


def test_packages_the_service_knows_nothing_about_are_not_called_clean(tmp_path: Path) -> None:
    reason = "Dependency not found on PyPI and could not be audited: yarl (1.25.1)"
    env = fake_pip_audit(
        tmp_path,
        [
            {"name": "aiohttp", "version": "3.14.5", "vulns": []},
            {"name": "yarl", "skip_reason": reason},
            {"name": "vonage", "skip_reason": reason.replace("yarl (1.25.1)", "vonage (4.9.1)")},
        ],
    )
    result = audit(env=env)
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        f"audit: NOT AUDITED: 2 of 3 pinned packages, for example {reason}",
        "audit: no known vulnerabilities in the 1 pinned packages that could be audited",
    ]
