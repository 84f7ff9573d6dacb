#!/usr/bin/env bash
# scripts/measure_cluster.sh LABEL (with `make cluster` up): re-seed 10,000 customers, time one linkage_migration run (partitions=4), print its phases.
set -euo pipefail; cd "$(dirname "$0")/.."
export AIRFLOW_API=http://127.0.0.1:8080 AIRFLOW_PASSWORD_FILE=var/cluster/secrets/admin_password
.venv/bin/linkage seed --uri mongodb://127.0.0.1:27017/ --db app --customers 10000 --replace --json | tail -1 | cut -c1-120
{ time scripts/trigger.sh linkage_migration '{"partitions": 4}'; } 2>&1 | tee "var/cluster-run-$1.log"
RUN=$(sed -n 's/^triggered linkage_migration run //p' "var/cluster-run-$1.log")
RUN="$RUN" .venv/bin/python - "$1" <<'PY'
import json, os, sys, urllib.request, urllib.parse
from datetime import datetime as dt
api = os.environ["AIRFLOW_API"]; run = os.environ["RUN"]
def call(path, body=None, token=None):
    req = urllib.request.Request(api + path, data=body and json.dumps(body).encode(), method="POST" if body else "GET",
                                 headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    return json.load(urllib.request.urlopen(req))
tok = call("/auth/token", {"username": "admin", "password": open(os.environ["AIRFLOW_PASSWORD_FILE"]).read()})["access_token"]
dr = call(f"/api/v2/dags/linkage_migration/dagRuns/{urllib.parse.quote(run)}", token=tok)
tis = call(f"/api/v2/dags/linkage_migration/dagRuns/{urllib.parse.quote(run)}/taskInstances?limit=500", token=tok)["task_instances"]
t = lambda s: dt.fromisoformat(s.replace("Z", "+00:00"))
def span(sel):
    xs = [ti for ti in tis if sel(ti["task_id"]) and ti["start_date"] and ti["end_date"]]
    return (max(t(x["end_date"]) for x in xs) - min(t(x["start_date"]) for x in xs)).total_seconds() if xs else None
out = {"label": sys.argv[1], "run": run, "state": dr["state"],
       "dagrun_s": (t(dr["end_date"]) - t(dr["start_date"])).total_seconds()}
for g in ("backfill_order_delivery", "backfill_user_customer"):
    ids = sorted({ti["task_id"] for ti in tis if ti["task_id"].startswith(g + ".")})
    planning = lambda i: i.startswith(g + ".") and not i.split(".")[1].startswith(("write_", "backup", "record_counts"))
    out[g] = {"group_s": span(lambda i: i.startswith(g + ".")),
              "planning_s": span(planning), "writing_s": span(lambda i: i.startswith(g + ".write_")),
              "phases_s": {i.split(".")[1]: span(lambda j, i=i: j == i) for i in ids}}
    out[g]["write_hosts"] = {f'{ti["task_id"].split(".")[1]}[{ti["map_index"]}]':
                             f'{ti["hostname"]} {ti["duration"]:.1f}s {ti["state"]}'
                             for ti in sorted(tis, key=lambda x: (x["task_id"], x["map_index"]))
                             if ti["task_id"].startswith(g + ".write_")}
out["other_s"] = {ti["task_id"]: round(ti["duration"] or 0, 1) for ti in tis if "." not in ti["task_id"]}
print(json.dumps(out, indent=1))
PY
