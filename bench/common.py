"""What the benchmarks share: the code state their figures were measured on."""

import hashlib
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    return subprocess.run(  # noqa: S603
        ["git", *args],  # noqa: S607 (a fixed command)
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    ).stdout


def code_state() -> str:
    """The commit, and a digest of the uncommitted production code (bench/ and
    tests/ aside): other work may change it between runs."""
    sha = _git("rev-parse", "--short", "HEAD").strip()
    digest = hashlib.sha256(_git("diff", "HEAD", "--", ".", ":!bench", ":!tests").encode())
    untracked = _git(
        "ls-files", "--others", "--exclude-standard", "--", ".", ":!bench", ":!tests"
    ).split()
    for name in sorted(untracked):
        digest.update(name.encode() + b"\0")
        digest.update((ROOT / name).read_bytes())
    if digest.hexdigest() == hashlib.sha256(b"").hexdigest():
        return f"git {sha}"
    return f"git {sha} + uncommitted changes {digest.hexdigest()[:10]}"


def code_since(at_start: str) -> str:
    """The code state now, saying so when it changed since ``at_start``."""
    now = code_state()
    return now if now == at_start else f"{at_start}, CHANGED during the run to {now}"
