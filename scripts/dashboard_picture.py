#!/usr/bin/env python3
"""A picture of the Grafana dashboard's main panels, from a real run's metrics.

Grafana cannot be installed here, so this scrapes the per-cluster exporters (the health and
backup controllers' leaders) of a running stack while you use it, then draws the panels the
dashboard (helm/etcd-operator/files/etcd-operator-dashboard.json) shows, with matplotlib:

  scripts/run.sh                                   # in one terminal
  python3 scripts/dashboard_picture.py --seconds 180 --record run.jsonl
                                                   # meanwhile: etcdopctl scale demo 5, ...
  python3 scripts/dashboard_picture.py --replay run.jsonl   # draw again from the recording

Writes docs/dashboard.png (--out).
"""

import argparse
import json
import pathlib
import re
import time
import urllib.request
from collections import defaultdict

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """Samples of a Prometheus text exposition: (name, labels, value)."""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if m:
            yield m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))


def record(urls, seconds, every, path):
    """Scrapes `urls` every `every` seconds for `seconds`; returns (and appends to `path`) the rows."""
    rows, start = [], time.time()
    out = open(path, "a") if path else None
    while time.time() - start < seconds:
        at = time.time()
        for url in urls:
            try:
                text = urllib.request.urlopen(url, timeout=5).read().decode()
            except OSError as e:
                print(f"{url}: {e}")
                continue
            for name, labels, value in parse(text):
                if name.startswith(("etcd_operator_cluster_", "etcd_operator_member_", "etcd_operator_backup_")):
                    row = {"t": at, "name": name, "labels": labels, "value": value}
                    rows.append(row)
                    if out:
                        out.write(json.dumps(row) + "\n")
        time.sleep(max(0.0, every - (time.time() - at)))
    return rows


def series(rows, name, key):
    """{legend: ([t], [value])} of metric `name`, one line per `key(labels)`."""
    out = defaultdict(lambda: ([], []))
    for r in rows:
        if r["name"] == name:
            ts, vs = out[key(r["labels"])]
            ts.append(r["t"])
            vs.append(r["value"])
    return out


def draw(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = min(r["t"] for r in rows)
    rows = [dict(r, t=r["t"] - t0) for r in rows]
    cluster = lambda l: f'{l.get("namespace")}/{l.get("cluster")}'
    member = lambda l: l.get("member", "?")
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5))
    fig.suptitle("etcd clusters (etcd-operator): the dashboard's main panels, from a real run")

    def panel(ax, title, lines, unit=None, step=False):
        for legend, (ts, vs) in sorted(lines.items()):
            if unit == "MiB":
                vs = [v / 2**20 for v in vs]
            (ax.step if step else ax.plot)(ts, vs, label=legend, **({"where": "post"} if step else {}))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("seconds")
        if unit:
            ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        if lines:
            ax.legend(fontsize=7, loc="best")

    ready = series(rows, "etcd_operator_cluster_ready_members", lambda l: cluster(l) + " ready")
    ready.update(series(rows, "etcd_operator_cluster_desired_members", lambda l: cluster(l) + " spec.size"))
    panel(axes[0][0], "Ready and wanted members", ready, step=True)
    panel(axes[0][1], "Quorum margin (failures tolerated)",
          series(rows, "etcd_operator_cluster_quorum_margin", cluster), step=True)
    panel(axes[0][2], "Leader changes",
          series(rows, "etcd_operator_cluster_leader_changes_total", cluster), step=True)
    panel(axes[1][0], "Database size per member",
          series(rows, "etcd_operator_member_db_size_bytes", member), unit="MiB")
    # Raft entries not yet applied, behind the most advanced member, as the dashboard computes it.
    index = series(rows, "etcd_operator_member_raft_index", member)
    applied = series(rows, "etcd_operator_member_raft_applied_index", member)
    top = defaultdict(float)
    for ts, vs in index.values():
        for t, v in zip(ts, vs):
            top[t] = max(top[t], v)
    lag = {m: (ts, [top[t] - v for t, v in zip(ts, vs)]) for m, (ts, vs) in applied.items()}
    panel(axes[1][1], "Raft entries behind the most advanced member", lag)
    age = {k: (ts, [t0 + t - v for t, v in zip(ts, vs)]) for k, (ts, vs) in
           series(rows, "etcd_operator_backup_schedule_last_success_timestamp_seconds",
                  lambda l: f'{l.get("namespace")}/{l.get("schedule")}').items()}
    panel(axes[1][2], "Age of the last successful backup", age, unit="seconds")
    fig.tight_layout()
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    print(f"wrote {path} from {len(rows)} samples")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--health", default="http://127.0.0.1:8082/metrics", help="the health controller's /metrics")
    p.add_argument("--backup", default="http://127.0.0.1:8084/metrics", help="the backup controller's /metrics")
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--every", type=float, default=5)
    p.add_argument("--record", help="also append the samples to this JSON-lines file")
    p.add_argument("--replay", help="draw from a recording instead of scraping")
    p.add_argument("--out", default="docs/dashboard.png")
    a = p.parse_args()
    if a.replay:
        rows = [json.loads(line) for line in open(a.replay)]
    else:
        rows = record([a.health, a.backup], a.seconds, a.every, a.record)
    if not rows:
        raise SystemExit("no per-cluster samples: is the stack running (scripts/run.sh)?")
    draw(rows, a.out)


if __name__ == "__main__":
    main()
