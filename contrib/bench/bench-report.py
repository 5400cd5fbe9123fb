#!/usr/bin/python3
"""bench-report.py RESULTS: turn the CASE/RESULT lines run-bench.sh collected
into doc/BENCHMARKS.md (on stdout): one table with a column per server, each
server CPU per delivery also as a multiple of the write floor measured in
the same run, the issues' targets judged against the measured figures
(never written by hand), and the raw RESULT lines so every figure can be
traced to a run."""

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
            "failed", "pub_errors", "errors", "bad_ids")
    return sum(int(kv.get(k, "0") or 0) for k in keys)


def ratio(v, floor):
    """v as a multiple of the write floor, e.g. "0.35x floor"."""
    if v is None or not floor:
        return None
    return f"{v / floor:,.2f}x floor"


# Cases whose events are all checked; maxsubs counts those it could hold.
def counted(name):
    return name not in ("maxsubs", "write-floor")


def main():
    cases, meta = parse(sys.argv[1])
    servers = [s for s in ("ringcast", "nchan")
               if any(f == s for (_, f) in cases)]

    def get(name, server, key):
        if name == "write-floor":
            server = "host"
        c = cases.get((name, server))
        return num(c[0], key) if c else None

    floor = get("write-floor", None, "ns_per_write")

    def cell(name, server, key, unit, digits, with_floor):
        c = cases.get((name, "host" if name == "write-floor" else server))
        if c and c[0].get("error") == "endpoint-missing":
            return "n/a (endpoint missing)"
        v = get(name, server, key)
        text = fmt(v, unit, digits)
        r = ratio(v, floor) if with_floor else None
        return f"{text} ({r})" if r else text

    def latency_rows(case, what):
        """A paced single-topic case: latency, and CPU as each event goes
        out alone."""
        return [
            (f"Publish -> receive p50, {what}", case, "p50_us", " us", 0,
             False),
            ("Publish -> receive p99", case, "p99_us", " us", 0, False),
            ("Publish -> receive max", case, "max_us", " us", 0, False),
            ("  server CPU per delivery (schedstat), paced: each event "
             "alone", case, "cpu_ns_per_delivery", " ns", 0, True)]

    def topic_rows(case, what):
        """A many-topic case: rate reached, latency, CPU."""
        return [
            (f"{what}: publishes/s reached", case, "pub_rate", "", 0,
             False),
            ("  publish -> receive p50", case, "p50_us", " us", 0, False),
            ("  publish -> receive p99", case, "p99_us", " us", 0, False),
            ("  server CPU per delivery (schedstat)", case,
             "cpu_ns_per_delivery", " ns", 0, True)]

    # (label, case, key, unit, digits, also as a multiple of the floor)
    rows = [
        ("Write floor: CPU per write(2) of 150 B to a waiting loopback "
         "TCP peer (write-floor, same host)", "write-floor",
         "ns_per_write", " ns", 0, False),
        ("User-space memory per idle subscriber, 10,000 subscribers "
         "(PSS delta / N)", "idle", "pss_bytes_per_sub", " B", 0, False),
        ("jemalloc allocated per idle subscriber (from /metrics)",
         "idle", "jemalloc_bytes_per_sub", " B", 0, False),
        ("Fan-out, 1,000 subs x 2,000 events of 128 B: deliveries/s",
         "fanout-1k", "rate", "", 0, False),
        ("  server CPU per delivery (utime+stime)", "fanout-1k",
         "cpu_us_per_delivery", " us", 3, False),
        ("  server CPU per delivery (schedstat)", "fanout-1k",
         "cpu_ns_per_delivery", " ns", 0, True),
        ("Fan-out, 10,000 subs x 200 events of 128 B: deliveries/s",
         "fanout-10k", "rate", "", 0, False),
        ("  server CPU per delivery (utime+stime)", "fanout-10k",
         "cpu_us_per_delivery", " us", 3, False),
        ("  server CPU per delivery (schedstat)", "fanout-10k",
         "cpu_ns_per_delivery", " ns", 0, True),
    ] + latency_rows("latency", "1,000 subs, 200 events/s") \
      + latency_rows("latency-50", "1,000 subs, 50 events/s") \
      + latency_rows("latency-20", "1,000 subs, 20 events/s") \
      + topic_rows("topics-paced", "Many topics, 30,000 subs over 3,000 "
                   "topics, one publish at a time toward 8,000/s") \
      + topic_rows("topics-max", "Many topics, the same at the highest "
                   "rate") + [
        ("Replay catch-up, 100,000 events behind: events/s", "replay",
         "rate", "", 0, False),
        ("Most concurrent subscribers held, 8 workers (150,000 tried)",
         "maxsubs", "connected", "", 0, False),
        ("  of which got the next event", "maxsubs", "deliveries", "", 0,
         False),
        ("  user-space memory per subscriber there (PSS delta / N)",
         "maxsubs", "pss_bytes_per_sub", " B", 0, False),
        ("Publish rate, one keep-alive connection, one at a time: "
         "events/s", "publish", "rate", "", 0, False),
        ("Batch publish, one connection, 1,000 ndjson events a request: "
         "events/s", "batch", "rate", "", 0, False),
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
    if floor:
        w(f"- Write floor: {fmt(floor, ' ns')} of CPU per write(2) of 150 "
          "bytes to a loopback TCP peer waiting to read it "
          "(`contrib/bench/write-floor`, measured in this run); each "
          "server CPU per delivery (schedstat) is also given as a "
          "multiple of it.")
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
    for label, case, key, unit, digits, with_floor in rows:
        vals = [cell(case, s, key, unit, digits, with_floor)
                for s in servers]
        if all(v == "n/a" for v in vals):
            continue
        w(f"| {label} | " + " | ".join(vals) + " |")
    lostrow = []
    for s in servers:
        tot = sum(lost(kv) for (n, f), (kv, _) in cases.items() if f == s
                  if counted(n))
        lostrow.append(str(tot))
    w("| Lost, duplicated, reordered or malformed events, failed or "
      "closed streams, failed publishes (all cases but maxsubs) | "
      + " | ".join(lostrow)
      + " |")
    w("")

    def judge(label, ok, text):
        w(f"| {label} | {text} | "
          + ("yes" if ok else ("no" if ok is not None else "n/a"))
          + " |")

    def case_lost(name, server):
        c = cases.get((name, server))
        return lost(c[0]) if c else None

    if "nchan" in servers:
        w("## Targets (issue #8), against the nchan figures above")
        w("")
        w("| target | measured | met |")
        w("|---|---|---|")
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
        tot = sum(lost(kv) for (n_, f), (kv, _) in cases.items()
                  if f == "ringcast" and counted(n_))
        judge("zero lost events", tot == 0,
              f"{tot} in the measured cases")
        w("")

    w("## Targets (issue #13), against nchan and the write floor above")
    w("")
    w("| target | measured | met |")
    w("|---|---|---|")
    for case, lab in (("topics-paced", "paced toward 8,000/s"),
                      ("topics-max", "highest rate")):
        r = get(case, "ringcast", "cpu_ns_per_delivery")
        n = get(case, "nchan", "cpu_ns_per_delivery")
        judge(f"many-topic server CPU per delivery <= 1/4 of nchan's "
              f"({lab})",
              None if r is None or n is None else r <= n / 4,
              f"{fmt(r, ' ns')} vs {fmt(n, ' ns')} "
              f"({fmt(n / r if r and n else None, 'x', 1)} less)")
        judge(f"many-topic server CPU per delivery <= 2x the write floor "
              f"({lab})",
              None if r is None or not floor else r <= 2 * floor,
              f"{fmt(r, ' ns')} = {ratio(r, floor) or 'n/a'} "
              f"({fmt(floor, ' ns')})")
        r = get(case, "ringcast", "pub_rate")
        n = get(case, "nchan", "pub_rate")
        z = case_lost(case, "ringcast")
        judge(f"many-topic publishes/s >= 2.5x nchan's, zero lost ({lab})",
              None if r is None or n is None or z is None
              else r >= 2.5 * n and z == 0,
              f"{fmt(r)}/s vs {fmt(n)}/s "
              f"({fmt(r / n if r and n else None, 'x', 2)}), "
              f"{'n/a' if z is None else z} lost")
    for case, lab in (("latency-20", "20 events/s"),
                      ("latency-50", "50 events/s"),
                      ("latency", "200 events/s")):
        r = get(case, "ringcast", "cpu_ns_per_delivery")
        judge(f"paced single-topic server CPU per delivery <= 1.0x the "
              f"write floor (1,000 subs, {lab})",
              None if r is None or not floor else r <= floor,
              f"{fmt(r, ' ns')} = {ratio(r, floor) or 'n/a'}")
    c = cases.get(("batch", "ringcast"))
    r = get("batch", "ringcast", "rate")
    if c and c[0].get("error") == "endpoint-missing":
        judge("batch publish >= 200,000 events/s into the ring, one "
              "connection", False, "n/a (endpoint missing)")
    else:
        z = case_lost("batch", "ringcast")
        judge("batch publish >= 200,000 events/s into the ring, one "
              "connection",
              None if r is None else r >= 200000 and z == 0,
              f"{fmt(r)}/s, {'n/a' if z is None else z} failed")
    r = get("maxsubs", "ringcast", "connected")
    d = get("maxsubs", "ringcast", "deliveries")
    judge(">= 150,000 concurrent subscribers with 8 workers, each "
          "getting the next event",
          None if r is None or d is None else r >= 150000 and d >= r,
          f"{fmt(r)} held, {fmt(d)} got it "
          f"(nchan {fmt(get('maxsubs', 'nchan', 'connected'))} held)")
    w("")

    w("## The cases")
    w("")
    w("Every case starts a fresh server: ringcastd with 2 workers (8 for "
      "maxsubs), `[ring] size 256M, slots 1048576`, `[stream] heartbeat "
      "60s`, `[limits] max_connections 0`, topics made on first publish; "
      "nginx + nchan from `contrib/bench/nchan.conf.in` with the same "
      "worker counts, the accept mutex on (so a worker near "
      "`worker_connections` leaves new connections to the others), a "
      "200,000-message buffer (`nchan_message_buffer_length`, "
      "`nchan_message_timeout 1h`), 512 MiB of shared memory. "
      "Each subscriber's payloads carry a sequence number (and the "
      "publish time), which the tool checks per subscriber for both "
      "servers; for ringcast it also checks that `id:` increases.")
    w("")
    w("- **write-floor**: once per run, before the servers. 50,000 "
      "writes of 150 bytes (a 128-byte event with its framing) to 1,000 "
      "loopback TCP connections in turn, TCP_NODELAY, each to a peer "
      "asleep in `epoll_wait` that reads it and acknowledges it "
      "out of band before the next write; the writer's CPU time around "
      "each write (CLOCK_THREAD_CPUTIME_ID, the clock schedstat reads, "
      "less the cost of reading it), averaged. What a delivery that goes "
      "out alone cannot cost less than.")
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
    w("- **latency**: 1,000 subscribers, 2,000 events at 200/s, each "
      "carrying its publish time (CLOCK_MONOTONIC); p50/p99/max over "
      "all 2,000,000 deliveries (1 us histogram buckets). At this pace "
      "each event goes out alone, so its server CPU per delivery is "
      "what a quiet topic costs, set against the write floor.")
    w("- **latency-50**, **latency-20**: the same at 50 events/s (1,000 "
      "events; the load at which the issue's reference nchan figure was "
      "taken and at which nchan's publisher keeps up) and at 20 "
      "events/s (300 events).")
    w("- **topics-paced**: 30,000 subscribers over 3,000 topics (10 "
      "each, 4 processes, source addresses 127.0.0.2-250); every topic "
      "made by one publish first; then 48,000 events of 128 bytes, "
      "event k to topic k mod 3,000, one request at a time (each waits "
      "for its answer) on one keep-alive connection, paced toward "
      "8,000/s. Each subscriber must get exactly the 16 events of its "
      "topic (one of another topic counts as malformed). Publishes/s "
      "reached = events / publishing time; p50/p99 over all 480,000 "
      "deliveries; server CPU per delivery by schedstat as in fanout.")
    w("- **topics-max**: the same, publishing as fast as answers come.")
    w("- **replay**: 100,000 events published first; then one "
      "subscriber (ringcast: `Last-Event-ID: 0`; nchan: a location with "
      "`nchan_subscriber_first_message oldest`) reads them all; events/s "
      "from its connect to its last event.")
    w("- **maxsubs**: 150,000 subscribers from 10 processes over source "
      "addresses 127.0.0.2-250, 8 server workers (each limited to "
      "20,000 descriptors, so ~160,000 is the ceiling); held, measured, "
      "then one event must reach every one held (a publisher whose "
      "connection the server drops connects once more).")
    w("- **publish**: 50,000 publishes on one keep-alive connection, "
      "each waiting for its answer.")
    w("- **batch**: 200,000 events as `POST /publish` requests of 1,000 "
      "`application/x-ndjson` lines (`{\"topic\":...,\"data\":...}`, "
      "128-byte data) on one keep-alive connection, each waiting for its "
      "answer, whose `ids` must be 1,000 consecutive rising ids; "
      "events/s from the first request to the last answer. A first "
      "answer of 400, 404 or 405 reads \"endpoint missing\"; nchan has "
      "no batch endpoint.")
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
    w("contrib/bench/ringcast-bench -m topics -p 8080 -n 30000 -N 3000 "
      "-e 48000 -r 8000 -P 4")
    w("contrib/bench/write-floor   # the floor on this machine")
    w("contrib/bench/run-bench.sh --quick --cases topics-max,batch "
      "--out /tmp/b.md   # a smoke test of some cases")
    w("```")
    w("")
    w("Measurements made outside `make bench` (reload hand-off, per-topic "
      "history, JWT on the connect path), each with its command, are in "
      "[BENCHMARKS-extra.md](BENCHMARKS-extra.md).")
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
