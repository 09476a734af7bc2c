#!/usr/bin/env python3
"""Checks the output of examples/kafka-to-hive.yaml (or any committing_file sink of JSON lines
with an `id` field): counts committed rows, duplicates, late and dirty rows, partitions and
their _SUCCESS markers. Reads only committed files (never .staging).

  deploy/check-output.py OUT_DIR [DIRTY_DIR] [--expect-ids N --bad-every K]

With --expect-ids, checks that ids 0..N-1 are each committed exactly once, except every K-th
(ids K-1, 2K-1, ...) which must be in the dirty output exactly once. Exit code 1 on a mismatch.
"""
import argparse
import collections
import json
import os
import sys


def rows_under(path, skip_hidden=True):
    rows, parts = [], collections.defaultdict(int)
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not (skip_hidden and d.startswith((".", "_"))))
        for name in files:
            if name.startswith((".", "_")):
                continue
            with open(os.path.join(root, name)) as fh:
                for line in fh:
                    if line.strip():
                        rows.append(json.loads(line))
                        parts[os.path.relpath(root, path)] += 1
    return rows, parts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("dirty", nargs="?")
    ap.add_argument("--expect-ids", type=int)
    ap.add_argument("--bad-every", type=int, default=0)
    a = ap.parse_args()
    rows, parts = rows_under(a.out)
    late, _ = rows_under(os.path.join(a.out, "_late"))
    dirty = rows_under(a.dirty)[0] if a.dirty and os.path.isdir(a.dirty) else []
    marked = sum(1 for p in parts if os.path.exists(os.path.join(a.out, p, "_SUCCESS")))
    ids = collections.Counter(r["id"] for r in rows + late if "id" in r)
    dups = [i for i, n in ids.items() if n > 1]
    print(f"committed rows: {len(rows)} in {len(parts)} partition(s), {marked} with _SUCCESS")
    print(f"late rows:      {len(late)}")
    print(f"dirty rows:     {len(dirty)}")
    reasons = collections.Counter(r.get("reason", "?").split(":")[0] for r in dirty)
    for reason, n in reasons.most_common(5):
        print(f"  {n:8d}  {reason}")
    print(f"duplicates:     {len(dups)}")
    ok = not dups
    if a.expect_ids is not None:
        bad = {i for i in range(a.expect_ids) if a.bad_every and i % a.bad_every == a.bad_every - 1}
        missing = set(range(a.expect_ids)) - bad - set(ids)
        print(f"missing ids:    {len(missing)}" + (f" e.g. {sorted(missing)[:5]}" if missing else ""))
        ok = ok and not missing and len(dirty) == len(bad)
        if len(dirty) != len(bad):
            print(f"expected {len(bad)} dirty rows")
    print("OK: every record exactly once" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
