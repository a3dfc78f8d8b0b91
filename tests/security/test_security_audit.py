"""The hash-chained audit log: appends, verification, every kind of tampering; ``hub audit``."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from hub.audit_cli import main as audit_main
from hubcore.security.audit import AuditLog, AuditLogDamaged, iter_records, record_hash, verify


def write(tmp_path: Path, n: int = 5) -> AuditLog:
    log = AuditLog(tmp_path, fsync=False)
    for i in range(n):
        log.append(subject=f"user{i}", key_id="k1" if i % 2 else None, tenant_id="acme" if i % 2 else "globex",
                   action="dashboards:delete", resource=f"dashboard/{i}", outcome="allowed" if i else "denied",
                   source_ip="10.0.0.1", user_agent="curl/8")  # fmt: skip
    return log


def lines(log: AuditLog) -> list[str]:
    return log.path.read_text().splitlines(keepends=True)


def test_append_and_verify(tmp_path: Path) -> None:
    log = write(tmp_path)
    assert verify(log.path) == (True, 5, None, "intact")
    recs = list(iter_records(log.path))
    assert [r["seq"] for r in recs] == [1, 2, 3, 4, 5]
    assert recs[0]["prev_hash"] == "0" * 64 and recs[1]["prev_hash"] == recs[0]["hash"]
    assert all(record_hash(r) == r["hash"] for r in recs)
    assert {"subject", "key_id", "tenant_id", "action", "resource", "outcome", "source_ip", "user_agent", "ts"} <= set(
        recs[0]
    )
    assert [r["seq"] for r in iter_records(log.path, tenant_id="acme")] == [2, 4]
    # reopening continues the chain; record() takes who from a principal
    from hubcore.security.principal import Principal

    rec = AuditLog(tmp_path, fsync=False).record(
        Principal("apikey:k9", "acme", key_id="k9"), "keys:manage", "key/k1", outcome="denied", source_ip="::1"
    )
    assert (rec["seq"], rec["subject"], rec["key_id"], rec["tenant_id"], rec["outcome"]) == (
        6,
        "apikey:k9",
        "k9",
        "acme",
        "denied",
    )
    assert verify(log.path).ok and verify(log.path).records == 6


def test_concurrent_appends_keep_the_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False)
    threads = [threading.Thread(target=lambda: [log.append(subject="t", tenant_id="a", action="x") for _ in range(50)])
               for _ in range(4)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verify(log.path) == (True, 200, None, "intact")


def _edit(ls: list[str]) -> list[str]:
    rec = json.loads(ls[2])
    rec["outcome"] = "allowed" if rec["outcome"] != "allowed" else "denied"
    return [*ls[:2], json.dumps(rec) + "\n", *ls[3:]]


def _edit_and_rehash(ls: list[str]) -> list[str]:
    rec = json.loads(ls[2])
    rec["subject"] = "mallory"
    rec["hash"] = record_hash(rec)
    return [*ls[:2], json.dumps(rec) + "\n", *ls[3:]]


def _insert(ls: list[str]) -> list[str]:
    rec = json.loads(ls[1])
    return [*ls[:2], json.dumps(rec) + "\n", *ls[2:]]


@pytest.mark.parametrize(
    ("tamper", "line", "reason"),
    [
        (_edit, 3, "edited"),
        (_edit_and_rehash, 4, "prev_hash"),  # re-hashing breaks the next link
        (lambda ls: ls[:2] + ls[3:], 3, "deleted"),  # delete line 3
        (lambda ls: ls[1:], 1, "prev_hash"),  # delete the first line
        (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], 2, "reordered"),  # swap lines 2 and 3
        (_insert, 3, "prev_hash"),
        (lambda ls: ls[:-1], 5, "truncated"),  # cut the tail
        (lambda ls: [], 1, "truncated"),  # empty the file
        (lambda ls: [*ls[:4], ls[4][:40]], 5, "JSON"),  # torn last line
    ],
)
def test_tampering_is_detected(
    tmp_path: Path, tamper, line: int, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    log = write(tmp_path)
    log.path.write_text("".join(tamper(lines(log))))
    result = verify(log.path)
    assert not result.ok
    assert result.first_bad_line == line
    assert reason in result.reason
    assert audit_main(["verify", "--data-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"line {line}:" in out and "TAMPERED" in out


def test_missing_or_mismatched_sidecar(tmp_path: Path) -> None:
    log = write(tmp_path, 3)
    log.head.write_text(json.dumps({"seq": 2, "hash": "f" * 64}))
    assert verify(log.path) == (False, 3, 2, "record does not match the hash in the head sidecar")
    log.head.unlink()
    assert verify(log.path).reason == "the head sidecar is missing"


def test_crash_between_append_and_sidecar_is_not_tampering(tmp_path: Path) -> None:
    log = write(tmp_path, 3)
    head = log.head.read_text()
    log.append(subject="late", tenant_id="acme", action="x")
    log.head.write_text(head)  # as if the process died before updating the sidecar
    assert verify(log.path).ok
    with open(log.path, "ab") as fh:  # a torn, unacknowledged append
        fh.write(b'{"seq": 5, "ts"')
    reopened = AuditLog(tmp_path, fsync=False)
    assert reopened.count == 4
    reopened.append(subject="after", tenant_id="acme", action="x")
    assert verify(log.path) == (True, 5, None, "intact")


def test_audit_cli_verify_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert audit_main(["verify", "--data-dir", str(tmp_path)]) == 0  # no log yet
    write(tmp_path, 6)
    capsys.readouterr()
    assert audit_main(["verify", "--data-dir", str(tmp_path)]) == 0
    assert "intact: 6 records" in capsys.readouterr().out
    assert audit_main(["list", "--data-dir", str(tmp_path), "--tenant", "acme", "--limit", "2"]) == 0
    recs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["seq"] for r in recs] == [6, 4]
    assert audit_main(["list", "--data-dir", str(tmp_path / "nope")]) == 2
    assert audit_main(["list", "--data-dir", str(tmp_path), "--limit", "0"]) == 2


@pytest.mark.parametrize("junk", [b"garbage\n", b"\x00\x00\x00\x00\n", b"{}\n\xff\xfe\n", b"[1, 2]\n"])
def test_lines_after_the_last_record_that_are_not_records_are_set_aside(tmp_path: Path, junk: bytes) -> None:
    # `echo garbage >> audit.jsonl` was a JSONDecodeError when the hub opened the log
    log = write(tmp_path, 3)
    log.close()
    with open(log.path, "ab") as fh:
        fh.write(junk)
    reopened = AuditLog(tmp_path, fsync=False)
    assert reopened.count == 3
    reopened.append(subject="after", tenant_id="acme", action="x")
    reopened.close()
    assert verify(log.path) == (True, 4, None, "intact")
    assert log.path.with_name("audit.jsonl.damaged").read_bytes() == junk  # kept, not destroyed


def test_a_damaged_record_the_head_names_is_refused_not_cut(tmp_path: Path) -> None:
    # cutting it would lose a durable record without a trace once the next append moves the head
    log = write(tmp_path, 3)
    log.close()
    kept = lines(log)
    log.path.write_text("".join(kept[:2]) + "garbage\n")
    with pytest.raises(AuditLogDamaged, match=r"its last 1 line\(s\) are not audit records.*names record 3"):
        AuditLog(tmp_path, fsync=False)
    assert log.path.read_text() == "".join(kept[:2]) + "garbage\n"  # untouched
    log.path.write_text("garbage\n")
    with pytest.raises(AuditLogDamaged, match="holds no audit record"):
        AuditLog(tmp_path, fsync=False)
