"""Fail when ``requirements.txt`` / ``requirements-test.txt`` and ``requirements.lock`` disagree.

Every requirement named in the requirements files must appear in the lock, pinned with ``==``
to a version that satisfies the requirement's specifier; the lock must not pin a package twice.
Run by ``make install`` (so ``make test`` and CI fail on a stale lock) and usable alone::

    python tools/check_lock.py [requirements.txt requirements-test.txt] [--lock requirements.lock]

Exit 0 when they agree, 1 with one line per problem otherwise. Needs only the standard
library and ``packaging`` (pip's vendored copy is used when ``packaging`` is not installed),
so it runs before the virtual environment exists.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version
except ImportError:  # a bare interpreter: pip always vendors packaging
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name
    from pip._vendor.packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def _lines(path: Path) -> list[str]:
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            out.append(line)
    return out


def read_lock(path: Path) -> tuple[dict[str, Version], list[str]]:
    pins: dict[str, Version] = {}
    problems: list[str] = []
    for line in _lines(path):
        req = Requirement(line)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            problems.append(f"{path.name}: {line!r} is not an exact '==' pin")
            continue
        name = canonicalize_name(req.name)
        if name in pins:
            problems.append(f"{path.name}: {req.name} is pinned twice")
        pins[name] = Version(specs[0].version)
    return pins, problems


def check(requirement_files: list[Path], lock: Path) -> list[str]:
    pins, problems = read_lock(lock)
    for path in requirement_files:
        for line in _lines(path):
            req = Requirement(line)
            name = canonicalize_name(req.name)
            if name not in pins:
                problems.append(f"{path.name}: {req.name} is not in {lock.name}; run 'make lock'")
            elif not req.specifier.contains(pins[name], prereleases=True):
                problems.append(f"{path.name}: {line!r} but {lock.name} pins {req.name}=={pins[name]}; run 'make lock'")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requirements", nargs="*", type=Path,
                        default=[ROOT / "requirements.txt", ROOT / "requirements-test.txt"])
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock")
    args = parser.parse_args(argv)
    problems = check(args.requirements, args.lock)
    for p in problems:
        print(f"check_lock: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
