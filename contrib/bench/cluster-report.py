#!/usr/bin/env python3
"""cluster-report.py: the RESULT lines of cluster-bench.sh (results.txt) as
a markdown section: single node beside the cluster (3 replicas, and 1
replica when measured).  A missing or failed case shows as "-" or
"error=...", never as a number it did not measure."""

import sys

SETUPS = [("single", "single node"),
          ("cluster-r3", "cluster, 3 replicas"),
          ("cluster-r1", "cluster, 1 replica")]


def parse(path):
    cases, meta = {}, {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("CASE "):
                kv = dict(w.split("=", 1) for w in line.split()
                          if "=" in w)
                cases[(kv.get("setup"), kv.get("name"))] = kv
            elif line:
                key, _, rest = line.partition(" ")
                meta[key] = rest
    return cases, meta


def num(v):
    return "{:,}".format(int(round(float(v))))


def ms(v):
    return "{:.1f}".format(float(v) / 1000.0)


def latency(c):
    if "p50_us" not in c:
        return "error={}".format(c.get("error", "no-result"))
    return "{} / {} / {}".format(ms(c["p50_us"]), ms(c["p99_us"]),
                                 ms(c["max_us"]))


def losses(c):
    if "missing" not in c:
        return "-"
    s = "{} / {} / {}".format(c["missing"], c["dup"], c["reorder"])
    extra = []
    for k in ("badid", "gaps", "failed", "closed", "pub_errors"):
        if c.get(k, "0") != "0":
            extra.append("{}={}".format(k, c[k]))
    if c.get("deliveries") and c.get("connected") and c.get("events"):
        want = int(c["connected"]) * int(c["events"])
        if int(c["deliveries"]) != want:
            extra.append("deliveries={}/{}".format(c["deliveries"], want))
    return s + (" ({})".format(", ".join(extra)) if extra else "")


def rate(c, key="rate"):
    if key not in c:
        return "error={}".format(c.get("error", "no-result"))
    s = num(c[key])
    bad = [k for k in ("errors", "bad_ids") if c.get(k, "0") != "0"]
    if bad:
        s += " ({})".format(", ".join("{}={}".format(k, c[k]) for k in bad))
    return s


def cpu_split(c):
    """CPU per event published, in us: ringcast's processes / the
    nats-servers' (10 ms clock ticks, so coarse for short cases)."""
    if "rc_cpu_ms" not in c or "events" not in c:
        return "-"
    n = float(c["events"])
    rc = float(c["rc_cpu_ms"]) * 1000.0 / n
    if c.get("setup") == "single":
        return "{:.0f}".format(rc)
    return "{:.0f} / {:.0f}".format(rc, float(c["nats_cpu_ms"]) * 1000.0 / n)


def main():
    cases, meta = parse(sys.argv[1])
    setups = [(s, label) for s, label in SETUPS
              if any(k[0] == s for k in cases)]

    def row(title, name, fn):
        cells = []
        for s, _ in setups:
            c = cases.get((s, name))
            cells.append(fn(c) if c is not None else "-")
        if all(x == "-" for x in cells):
            return
        print("| {} | {} |".format(title, " | ".join(cells)))

    print("Measured {}, commit {}, {}; load average before {}, after {}; "
          "{}{}.".format(meta.get("DATE", "?"), meta.get("COMMIT", "?"),
                         meta.get("HOST", "?"),
                         meta.get("LOAD", "").split("before=")[-1]
                         .split(" after=")[0],
                         meta.get("LOAD", "").split("after=")[-1],
                         meta.get("NATS", "nats-server ?"),
                         " (--quick)" if meta.get("QUICK") == "1" else ""))
    print()
    print("| measure | {} |".format(" | ".join(l for _, l in setups)))
    print("|---|{}".format("---:|" * len(setups)))
    for r in ("200", "1000"):
        row("{} ev/s, pub A, 1,000 subs B: p50 / p99 / max (ms)".format(r),
            "latency-" + r, latency)
        row("{} ev/s: missing / dup / reorder".format(r),
            "latency-" + r, losses)
        row("{} ev/s: publish rate reached (1 connection)".format(r),
            "latency-" + r, lambda c: rate(c, "pub_rate"))
    row("200 ev/s, pub A, 100 subs B: p50 / p99 / max (ms)",
        "latency-200-100", latency)
    row("200 ev/s, 100 subs: missing / dup / reorder", "latency-200-100",
        losses)
    row("publish, 1 connection, 1 in flight (events/s)", "publish", rate)
    row("publish: CPU per event, ringcast / NATS (us)", "publish", cpu_split)
    row("publish, 1 connection, 16 pipelined (events/s)", "publish-d16",
        rate)
    row("batch, 1,000 lines a request (events/s)", "batch", rate)
    row("batch: CPU per event, ringcast / NATS (us)", "batch", cpu_split)
    row("after the cases: last id, stream / A / B (s to catch up)", "relay",
        lambda c: "{} / {} / {} ({} s)".format(
            c.get("stream_last"), c.get("a_last"), c.get("b_last"),
            c.get("wait_s")))
    row("relay gaps, duplicates, disconnects, restarts (A; B)", "relay",
        lambda c: "; ".join(" / ".join(c.get("{}_{}".format(n, k), "?")
                                        for k in ("gaps_total",
                                                  "duplicates_total",
                                                  "disconnects_total",
                                                  "relay_restarts_total"))
                            for n in ("a", "b")))
    row("publishes refused (503) on A", "relay",
        lambda c: c.get("a_refused", "?"))
    row("JetStream alone (nats.c), 1 in flight (events/s)", "js-sync",
        rate)
    row("JetStream alone: PubAck wait p50 / p99 / max (ms)", "js-sync",
        latency)
    row("JetStream alone, 256 in flight (events/s)", "js-async", rate)
    row("JetStream alone, async, 1 in flight (events/s)", "js-async1", rate)
    row("JetStream alone, async + SendAsap, 1 in flight (events/s)",
        "js-async1-asap", rate)


if __name__ == "__main__":
    main()
