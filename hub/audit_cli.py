"""``hub audit``: check and read the hash-chained audit log ``<data_dir>/audit/audit.jsonl``.

    hub audit verify --data-dir ./data            # exit 0 intact, 1 tampered (line number and reason)
    hub audit list   --data-dir ./data [--tenant acme] [--limit 50]   # newest first, JSON lines

Exit 2 for bad usage (missing data directory).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hubcore.security.audit import tail, verify


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hub audit", description="Verify and list the hub's audit log.")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", required=True, help="the hub's data directory (holds audit/audit.jsonl)")
    common.add_argument("--audit-dir", help="the audit directory when service.audit.directory moved it")
    sub.add_parser("verify", parents=[common], help="check the hash chain and the head sidecar")
    ls = sub.add_parser("list", parents=[common], help="the newest records, newest first, as JSON lines")
    ls.add_argument("--tenant", help="only this tenant's records")
    ls.add_argument("--limit", type=int, default=100, help="how many records (default 100)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        print(f"hub audit: data directory {str(data_dir)!r} does not exist", file=sys.stderr)
        return 2
    path = (Path(args.audit_dir) if args.audit_dir else data_dir / "audit") / "audit.jsonl"
    if args.command == "verify":
        result = verify(path)
        if result.ok:
            print(f"audit log intact: {result.records} records ({path})")
            return 0
        where = f"line {result.first_bad_line}: " if result.first_bad_line is not None else ""
        print(f"audit log TAMPERED: {where}{result.reason} ({result.records} records verified before it; {path})")
        return 1
    if args.limit <= 0:
        print("hub audit list: --limit must be positive", file=sys.stderr)
        return 2
    for rec in tail(path, tenant_id=args.tenant, limit=args.limit):
        print(json.dumps(rec, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
