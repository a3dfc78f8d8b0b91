#!/usr/bin/env python3
"""Generate the hub's Grafana dashboards into grafana/dashboards/*.json.

    .venv/bin/python scripts/gen_dashboards.py          # (re)write the JSON files
    .venv/bin/python scripts/gen_dashboards.py --check  # exit 1 if a committed file is stale

Needs ``grafana-foundation-sdk`` (pip install 'grafana-foundation-sdk==1769699998!10.1.0').
The definitions live in grafana/generator/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "grafana" / "dashboards"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the committed files")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory (default: %(default)s)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from grafana.generator import build_all, render

    stale: list[str] = []
    args.out.mkdir(parents=True, exist_ok=True)
    for stem, model in build_all().items():
        path = args.out / f"{stem}.json"
        text = render(model)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    if stale:
        print("stale (run scripts/gen_dashboards.py):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
