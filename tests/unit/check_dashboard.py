"""deploy/grafana/weir-dashboard.json parses, and every metric its queries use is one Weir
reports (listed in docs/metrics.md, which docs.metrics_listed holds to the code)."""
import json
import re
import sys

root = sys.argv[1]
dash = json.load(open(f"{root}/deploy/grafana/weir-dashboard.json"))
doc = open(f"{root}/docs/metrics.md").read()
used = {n for p in dash["panels"] for t in p["targets"] for n in re.findall(r"weir_[a-z_]+", t["expr"])}
unknown = sorted(n for n in used if f"`{n}`" not in doc)
if unknown or not used:
    sys.exit(f"dashboard queries unknown metrics: {unknown}" if unknown else "no queries")
print(f"{len(dash['panels'])} panels over {len(used)} metrics")
