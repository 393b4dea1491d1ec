"""`make audit`: known vulnerabilities in the pinned requirements (requirements.lock), for CI.

Runs pip-audit on the exact pins (no resolution, no install) against PyPI's vulnerability
data, the one service reachable wherever the packages themselves install (OSV is often not).

- A known vulnerability in a pinned version fails (exit 1), each one listed with the versions
  that fix it: bump the pin in requirements.lock (and pyproject.toml), or, after reading the
  advisory, pass `--ignore-vuln ID` (`make audit AUDIT_ARGS='--ignore-vuln ID'`).
- A service that cannot be reached, or that has no record of some packages, is reported loudly
  and does not fail: the audit then says what it could not check instead of "no known
  vulnerabilities".

Extra arguments go to pip-audit. PIP_AUDIT names the pip-audit to run (default: the one beside
this Python).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
#: the whole audit; pip-audit's own per-request timeout is 15 s
TIMEOUT_SECONDS = 600

EXIT_OK = 0
EXIT_VULNERABLE = 1
EXIT_BROKEN = 2


def say(text: str) -> None:
    print(f"audit: {text}", flush=True)


def main(extra: list[str]) -> int:
    """Run the audit; returns the exit status."""
    pip_audit = os.environ.get("PIP_AUDIT") or str(Path(sys.executable).with_name("pip-audit"))
    with tempfile.TemporaryDirectory(prefix="audit-") as directory:
        report = Path(directory) / "report.json"
        command = [
            pip_audit,
            *("--requirement", str(LOCK), "--no-deps", "--disable-pip"),
            *("--vulnerability-service", "pypi", "--progress-spinner", "off"),
            *("--format", "json", "--output", str(report)),
            *extra,
        ]
        try:
            done = subprocess.run(  # noqa: S603 - our own tool and arguments
                command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
            )
        except FileNotFoundError:
            say(f"cannot run {pip_audit}: is the virtualenv installed (make install)?")
            return EXIT_BROKEN
        except subprocess.TimeoutExpired:
            say(f"NOT AUDITED: no answer from the vulnerability service in {TIMEOUT_SECONDS} s")
            return EXIT_OK
        if not report.is_file():
            # pip-audit stops at the first request that fails and writes no report.
            reason = _last_line(done.stderr) or f"pip-audit exited {done.returncode}"
            say(f"NOT AUDITED: the vulnerability service could not be reached ({reason})")
            return EXIT_OK
        result: dict[str, Any] = json.loads(report.read_text())
    return summarise(result["dependencies"])


def summarise(dependencies: list[dict[str, Any]]) -> int:
    """Print what the report says; the exit status is EXIT_VULNERABLE if anything is."""
    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if d.get("skip_reason")]
    audited = len(dependencies) - len(skipped)
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            aliases = ", ".join(vuln.get("aliases") or [])
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            say(
                f"VULNERABLE {dependency['name']} {dependency['version']}: {vuln['id']}"
                + (f" ({aliases})" if aliases else "")
                + f"; fixed in {fixed}"
            )
    if skipped:
        say(
            f"NOT AUDITED: {len(skipped)} of {len(dependencies)} pinned packages, for example "
            f"{skipped[0]['skip_reason']}"
        )
    if vulnerable:
        count = sum(len(d["vulns"]) for d in vulnerable)
        say(
            f"FAILED: {count} known vulnerabilities in {len(vulnerable)} pinned packages; "
            "update requirements.lock"
        )
        return EXIT_VULNERABLE
    if audited:
        say(f"no known vulnerabilities in the {audited} pinned packages that could be audited")
    return EXIT_OK


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line]
    return (errors or lines or [""])[-1][:300]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
