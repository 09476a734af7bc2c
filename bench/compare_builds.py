#!/usr/bin/env python3
"""Runs the same benchmarks from two builds alternately (A B A B ...) on this machine and
prints each figure as the median ratio B / A, so that a change is judged against a baseline
measured in the same session. Load on the machine moves both builds alike; the spread column
says how far single pairs strayed.

    bench/compare_builds.py BASE_BENCH_DIR NEW_BENCH_DIR [--rounds 3]

where each directory holds chain_bench, shuffle_bench and file_sink_bench (e.g. a copy of
build/bench from the commit before a change, and build/bench after it).
"""
import argparse
import os
import re
import statistics
import subprocess

# name -> (argv after the binary, {figure: regex with one float group})
BENCHES = {
    "chain_bench": (["--benchmark_filter=BM_WeirChain"], {
        "chain rec/s (wall)": r"weir_rec_per_s=([\d.]+)M",
        "chain rec/s per CPU s": r"weir_rec_per_cpu_s=([\d.]+)M",
    }),
    "shuffle_bench": (["2000000"], {
        "shuffle M rec/s": r"weir hash shuffle\s+[\d.]+\s+([\d.]+)",
    }),
    "file_sink_bench": (["2000000", "1000000"], {
        "file sink JSON serialize rows/s": r"JSON serialization \+ buffered write\s+([\d.]+) M",
        "file sink one dir rows/s": r"committing_file, one directory\s+([\d.]+) M",
        "file sink 24 partitions rows/s": r"24 hourly partitions\s+([\d.]+) M",
    }),
}


def run(directory, name):
    args, figures = BENCHES[name]
    out = subprocess.run([os.path.join(directory, name)] + args, capture_output=True, text=True,
                         timeout=600).stdout
    got = {}
    for fig, rx in figures.items():
        m = re.search(rx, out)
        if m:
            got[fig] = float(m.group(1))
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", nargs="*", default=list(BENCHES))
    a = ap.parse_args()
    ratios = {}
    for r in range(a.rounds):
        for name in a.only:
            base = run(a.base, name)
            new = run(a.new, name)
            for fig in base:
                if fig in new and base[fig] > 0:
                    ratios.setdefault(fig, []).append(new[fig] / base[fig])
                    print(f"round {r + 1} {fig}: base {base[fig]:.3g} new {new[fig]:.3g}",
                          flush=True)
    print(f"\n{'figure':<36} {'median new/base':>16} {'min':>6} {'max':>6}  pairs")
    for fig, rs in ratios.items():
        print(f"{fig:<36} {statistics.median(rs):>16.2f} {min(rs):>6.2f} {max(rs):>6.2f}  {len(rs)}")


if __name__ == "__main__":
    main()
