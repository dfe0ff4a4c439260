"""Licence report of the locked dependency set; exits 1 if any package is AGPL-licensed.

Reads each locked distribution's installed metadata (License-Expression, License, classifiers),
so the report shows what is actually installed, not what a registry page says. ``make test``
runs it; ``--out FILE`` also writes the table as JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = re.compile(r"\bAGPL|Affero", re.IGNORECASE)


def locked_names(lock: Path) -> list[str]:
    names = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==", line)
        if m:
            names.append(m.group(1))
    return names


def licence_of(name: str) -> str:
    try:
        meta = metadata.metadata(name)
    except metadata.PackageNotFoundError:
        return "NOT INSTALLED"
    parts = [meta.get("License-Expression") or ""]
    lic = (meta.get("License") or "").strip()
    if lic and len(lic) < 200:  # some packages paste the whole licence text here
        parts.append(lic)
    elif lic:
        parts.append(lic.splitlines()[0][:80])
    parts += [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return "; ".join(dict.fromkeys(p for p in parts if p)) or "UNKNOWN"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rows = {name: licence_of(name) for name in [*locked_names(args.lock), "torch"]}
    bad = {n: lic for n, lic in rows.items() if FORBIDDEN.search(lic) or lic == "NOT INSTALLED"}
    for name, lic in sorted(rows.items()):
        print(f"{name:40s} {lic}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2, sort_keys=True), encoding="utf-8")
    if bad:
        print(f"licence check FAILED: {bad}", file=sys.stderr)
        return 1
    print(f"licence check passed: {len(rows)} packages, none AGPL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
