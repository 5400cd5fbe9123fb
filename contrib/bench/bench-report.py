#!/usr/bin/python3
"""bench-report.py RESULTS: turn the CASE/RESULT lines run-bench.sh collected
into doc/BENCHMARKS.md (on stdout): one table with a column per server, the
issue's targets judged against the measured nchan figures, and the raw
RESULT lines so every figure can be traced to a run."""

import sys


def parse(path):
    cases, meta = {}, {}
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith("CASE "):
            kv = dict(t.split("=", 1) for t in line.split()
                      if "=" in t)
            cases[(kv["name"], kv["flavour"])] = (kv, line)
        elif line:
            key, _, rest = line.partition(" ")
            meta[key] = rest
    return cases, meta


def num(kv, key):
    try:
        return float(kv[key])
    except (KeyError, ValueError):
        return None


def fmt(v, unit="", digits=0):
    if v is None:
        return "n/a"
    if digits == 0:
        return f"{v:,.0f}{unit}"
    return f"{v:,.{digits}f}{unit}"


def lost(kv):
    keys = ("missing", "dup", "reorder", "badid", "malformed", "closed",
            "failed", "pub_errors")
    return sum(int(kv.get(k, "0") or 0) for k in keys)


def main():
    cases, meta = parse(sys.argv[1])
    servers = [s for s in ("ringcast", "nchan")
               if any(f == s for (_, f) in cases)]

    def get(name, server, key):
        c = cases.get((name, server))
        return num(c[0], key) if c else None

    rows = [
        ("User-space memory per idle subscriber, 10,000 subscribers "
         "(PSS delta / N)", "idle", "pss_bytes_per_sub", " B", 0),
        ("jemalloc allocated per idle subscriber (from /metrics)",
         "idle", "jemalloc_bytes_per_sub", " B", 0),
        ("Fan-out, 1,000 subs x 2,000 events of 128 B: deliveries/s",
         "fanout-1k", "rate", "", 0),
        ("  server CPU per delivery (utime+stime)", "fanout-1k",
         "cpu_us_per_delivery", " us", 3),
        ("  server CPU per delivery (schedstat)", "fanout-1k",
         "cpu_ns_per_delivery", " ns", 0),
        ("Fan-out, 10,000 subs x 200 events of 128 B: deliveries/s",
         "fanout-10k", "rate", "", 0),
        ("  server CPU per delivery (utime+stime)", "fanout-10k",
         "cpu_us_per_delivery", " us", 3),
        ("  server CPU per delivery (schedstat)", "fanout-10k",
         "cpu_ns_per_delivery", " ns", 0),
        ("Publish -> receive p50, 1,000 subs, 200 events/s", "latency",
         "p50_us", " us", 0),
        ("Publish -> receive p99", "latency", "p99_us", " us", 0),
        ("Publish -> receive max", "latency", "max_us", " us", 0),
        ("Publish -> receive p50, 1,000 subs, 50 events/s", "latency-50",
         "p50_us", " us", 0),
        ("Publish -> receive p99", "latency-50", "p99_us", " us", 0),
        ("Publish -> receive max", "latency-50", "max_us", " us", 0),
        ("Replay catch-up, 100,000 events behind: events/s", "replay",
         "rate", "", 0),
        ("Most concurrent subscribers held, 4 workers (80,000 tried)",
         "maxsubs", "connected", "", 0),
        ("  user-space memory per subscriber there (PSS delta / N)",
         "maxsubs", "pss_bytes_per_sub", " B", 0),
        ("Publish rate, one keep-alive connection, one at a time: "
         "events/s", "publish", "rate", "", 0),
    ]
    out = []
    w = out.append
    w("# ringcast benchmarks")
    w("")
    w("Measured with the bundled load tool `contrib/bench/ringcast-bench` "
      "by `make bench` (`contrib/bench/run-bench.sh`), "
      + ("against ringcastd and nginx + nchan in the same run."
         if "nchan" in servers else "against ringcastd only."))
    w("")
    w(f"- Date: {meta.get('DATE', '?')}; commit {meta.get('COMMIT', '?')}")
    w(f"- Host: {meta.get('HOST', '?')}")
    if "nchan" in servers:
        w(f"- nchan {meta.get('NCHAN', '?')} on nginx "
          f"{meta.get('NGINX', '?')} (Debian packages nginx-light, "
          "libnginx-mod-nchan)")
    load = meta.get('LOAD', '?')
    try:
        busy = float(load.split("before=")[1].split()[0]) > 1.5
    except (IndexError, ValueError):
        busy = False
    w(f"- Load average (1, 5, 15 min) {load}. "
      + ("**Other work was running on the machine when the run began; "
         "absolute figures are noisy.** " if busy else "")
      + "The load tool runs on the same two CPUs as the server, so "
      "every figure includes the clients' share of the CPU; the two "
      "columns were measured back to back under the same conditions.")
    if meta.get("QUICK", "0").strip() == "1":
        w("- **Quick mode (--quick): small sizes, not the figures of the "
          "issue.**")
    w("")
    w("| measure | " + " | ".join(servers) + " |")
    w("|---|" + "---:|" * len(servers))
    for label, case, key, unit, digits in rows:
        vals = [fmt(get(case, s, key), unit, digits) for s in servers]
        if all(v == "n/a" for v in vals):
            continue
        w(f"| {label} | " + " | ".join(vals) + " |")
    lostrow = []
    for s in servers:
        tot = sum(lost(kv) for (n, f), (kv, _) in cases.items() if f == s
                  if n != "maxsubs")
        lostrow.append(str(tot))
    w("| Lost, duplicated, reordered or malformed events, failed or "
      "closed streams (all cases but maxsubs) | " + " | ".join(lostrow)
      + " |")
    w("")

    if "nchan" in servers:
        w("## Targets (issue #8), against the nchan figures above")
        w("")
        w("| target | measured | met |")
        w("|---|---|---|")

        def judge(label, ok, text):
            w(f"| {label} | {text} | "
              + ("yes" if ok else ("no" if ok is not None else "n/a"))
              + " |")

        pss = get("idle", "ringcast", "pss_bytes_per_sub")
        judge("user-space memory per idle subscriber <= 1 KiB",
              None if pss is None else pss <= 1024,
              f"{fmt(pss, ' B')} (nchan {fmt(get('idle', 'nchan', 'pss_bytes_per_sub'), ' B')})")
        for case, lab in (("fanout-1k", "1,000 subs"),
                          ("fanout-10k", "10,000 subs")):
            r = get(case, "ringcast", "cpu_ns_per_delivery")
            n = get(case, "nchan", "cpu_ns_per_delivery")
            judge(f"server CPU per delivery <= 1/4 of nchan's ({lab})",
                  None if r is None or n is None else r <= n / 4,
                  f"{fmt(r, ' ns')} vs {fmt(n, ' ns')} "
                  f"({fmt(n / r if r and n else None, 'x', 1)} less)")
            r = get(case, "ringcast", "rate")
            n = get(case, "nchan", "rate")
            judge(f"fan-out deliveries/s >= 2x nchan's ({lab})",
                  None if r is None or n is None else r >= 2 * n,
                  f"{fmt(r)}/s vs {fmt(n)}/s "
                  f"({fmt(r / n if r and n else None, 'x', 1)})")
        for case, lab in (("latency", "200 events/s"),
                          ("latency-50", "50 events/s")):
            r = get(case, "ringcast", "p99_us")
            n = get(case, "nchan", "p99_us")
            judge(f"p99 publish->receive <= 1/2 of nchan's ({lab})",
                  None if r is None or n is None else r <= n / 2,
                  f"{fmt(r, ' us')} vs {fmt(n, ' us')}")
        r = get("maxsubs", "ringcast", "connected")
        judge(">= 70,000 concurrent subscribers with 4 workers",
              None if r is None else r >= 70000,
              f"{fmt(r)} (nchan {fmt(get('maxsubs', 'nchan', 'connected'))})")
        z = lost(cases[("maxsubs", "ringcast")][0]) if (
            "maxsubs", "ringcast") in cases else 0
        tot = sum(lost(kv) for (n_, f), (kv, _) in cases.items()
                  if f == "ringcast" and n_ != "maxsubs")
        judge("zero lost events", tot == 0,
              f"{tot} in the measured cases")
        w("")

    w("## The cases")
    w("")
    w("Every case starts a fresh server: ringcastd with 2 workers (4 for "
      "maxsubs), `[ring] size 256M, slots 1048576`, `[stream] heartbeat "
      "60s`, `[limits] max_connections 0`, topics made on first publish; "
      "nginx + nchan from `contrib/bench/nchan.conf.in` with the same "
      "worker counts, a 200,000-message buffer (`nchan_message_buffer_"
      "length`, `nchan_message_timeout 1h`), 512 MiB of shared memory. "
      "Each subscriber's payloads carry a sequence number (and the "
      "publish time), which the tool checks per subscriber for both "
      "servers; for ringcast it also checks that `id:` increases.")
    w("")
    w("- **idle**: 10,000 subscribers; server PSS (sum of Pss over master "
      "and workers, `/proc/PID/smaps_rollup`) and jemalloc allocated "
      "(sum of `ringcast_jemalloc_allocated_bytes`) before connecting and "
      "2 s after the last got its stream, divided by N. Then one event "
      "is published and must reach every subscriber. Kernel socket "
      "memory is not in these figures.")
    w("- **fanout**: N subscribers, then M events of 128 bytes published "
      "back to back on one keep-alive connection with up to 64 requests "
      "in flight; deliveries/s from the first publish to the last "
      "delivery. Server CPU: utime+stime (`/proc/PID/stat`, 10 ms ticks) "
      "and `/proc/PID/schedstat` (ns) of master + workers, before the "
      "first publish and after the last delivery, divided by deliveries.")
    w("- **latency-50**: the same at 50 events/s (1,000 events), the "
      "load at which the issue's reference nchan figure was taken and "
      "at which nchan's publisher keeps up.")
    w("- **latency**: 1,000 subscribers, 2,000 events at 200/s, each "
      "carrying its publish time (CLOCK_MONOTONIC); p50/p99/max over "
      "all 2,000,000 deliveries (1 us histogram buckets).")
    w("- **replay**: 100,000 events published first; then one "
      "subscriber (ringcast: `Last-Event-ID: 0`; nchan: a location with "
      "`nchan_subscriber_first_message oldest`) reads them all; events/s "
      "from its connect to its last event.")
    w("- **maxsubs**: 80,000 subscribers from 6 processes over source "
      "addresses 127.0.0.2-250, 4 server workers (each limited to "
      "20,000 descriptors, so ~80,000 is the ceiling); held, measured, "
      "then one event must reach every one held.")
    w("- **publish**: 50,000 publishes on one keep-alive connection, "
      "each waiting for its answer.")
    w("")
    w("## How to run")
    w("")
    w("```sh")
    w("apt-get install -y nginx-light libnginx-mod-nchan   # optional")
    w("autoreconf -fi && ./configure -q --enable-strict && make -j2")
    w("make bench          # both servers when nchan is installed")
    w("make bench-nchan    # insist on nchan")
    w("contrib/bench/ringcast-bench -m fanout -p 8080 -n 1000 -e 2000 "
      "-P 4 -d 64   # one case by hand")
    w("```")
    w("")
    w("## Raw results")
    w("")
    w("```")
    for key in sorted(cases):
        w(cases[key][1])
    w("```")
    print("\n".join(out))


if __name__ == "__main__":
    main()
