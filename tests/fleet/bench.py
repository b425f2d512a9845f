#!/usr/bin/env python3
"""tests/fleet/bench.py: the fleet benchmark's measurements, against the real Prometheus's HTTP API
(run in the central namespace by tests/fleet/bench.sh).

  wait-vms N I TIMEOUT    until N VMs have a state sample less than 2 intervals I old; prints
                          the seconds it took
  delays OUT UNTIL        polls every VM's last_update once a second until the time UNTIL; for each
                          new value, writes the delay from that last-update to the poll that first
                          saw it (one line: instance vm last_update delay)
  account T1 T2 I G HOSTS  counts, over the reads of [T1, T2], every value that had to arrive and
                          those that did (JSON on stdout)
"""
import json
import sys
import time
import urllib.parse
import urllib.request

PROM = "http://127.0.0.1:%s" % sys.argv[1]


def query(expr, at=None):
    params = {"query": expr}
    if at is not None:
        params["time"] = "%.3f" % at
    url = PROM + "/api/v1/query?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=120) as r:
        doc = json.load(r)
    if doc.get("status") != "success":
        raise RuntimeError("Prometheus refused %r: %r" % (expr, doc))
    return doc["data"]["result"]


def wait_vms(n, interval, timeout):
    """Until n VMs have a state sample less than 2 intervals old: every VM there, and the central
    collectd through whatever backlog it had."""
    t0 = time.time()
    expr = 'count(time() - timestamp(collectd_balloon_gauge{type="state"}) < %g)' % (2 * interval)
    while True:
        got = int(float((query(expr) or [{"value": [0, 0]}])[0]["value"][1]))
        if got >= n:
            print("%.1f" % (time.time() - t0))
            return 0
        if time.time() - t0 > timeout:
            print("only %d of %d VMs after %.0f s" % (got, n, timeout), file=sys.stderr)
            return 1
        time.sleep(1)


def delays(out, until):
    seen = {}
    with open(out, "w") as f:
        while time.time() < until:
            t = time.time()
            for r in query('collectd_balloon_timestamp{type="last_update"}', at=t):
                k = (r["metric"]["instance"], r["metric"]["balloon"])
                lu = float(r["value"][1])
                old = seen.get(k)
                seen[k] = lu
                if old is not None and lu > old:
                    f.write("%s %s %.0f %.3f\n" % (k[0], k[1], lu, t - lu))
            f.flush()
            time.sleep(max(0.0, 1.0 - (time.time() - t)))
    return 0


READ_TIME = ("collectd_balloon_gauge", "collectd_balloon_duration_seconds")


def account(t1, t2, interval, guests, hosts):
    """Every VM's every series, every read of [t1, t2]. The reads of a VM are its state samples (one
    per read, at the read's time); a read's stats are at last_update = read time - stats age, one
    sample per stats series for each last_update that advanced. Expected: for each hypervisor's
    read cycle (its VMs' state samples, grouped), one state, polling interval and stats age sample
    per VM (a VM with stats), and for each last_update seen, one sample per stats series."""
    names = [r["metric"]["__name__"] for r in query('count by (__name__) ({__name__=~"collectd_balloon_.+"})')]
    window = int(t2 - t1 + 3 * interval) + 1
    expected = arrived = 0
    lost_examples = []
    missing_cycles = missing_vms = 0
    for h in hosts:
        series = {}  # (vm, name, type) -> set of sample times
        for name in names:
            for r in query('%s{instance="%s"}[%ds]' % (name, h, window), at=t2 + interval):
                m = r["metric"]
                series[(m.get("balloon"), name, m.get("type"))] = {float(t): float(v) for t, v in r["values"]}
        vms = sorted({k[0] for k in series})
        # Every stats series any VM of the hypervisor has: all its guests have the same profile.
        kinds = sorted({k[1:] for k in series if k[1] not in READ_TIME}, key=str)
        if len(vms) < guests:
            missing_vms += guests - len(vms)
            lost_examples.append("%s: %d of %d VMs have series" % (h, len(vms), guests))
        # The hypervisor's read cycles in [t1, t2]: state sample times, grouped by gaps of more
        # than half an interval; a gap of more than 1.5 intervals is a cycle lost altogether.
        times = sorted(t for (vm, n, ty), s in series.items() if n == "collectd_balloon_gauge" and ty == "state"
                       for t in s if t1 <= t <= t2)
        cycles = []
        for t in times:
            if not cycles or t - cycles[-1][-1] > interval / 2:
                cycles.append([t])
            else:
                cycles[-1].append(t)
        for a, b in zip(cycles, cycles[1:]):
            gap = b[0] - a[-1]
            if gap > 1.5 * interval:
                missing_cycles += round(gap / interval) - 1
        bounds = [(c[0], c[-1]) for c in cycles]

        def count_in_cycles(s):
            return sum(1 for lo, hi in bounds if any(lo <= t <= hi for t in s))

        for vm in vms:
            ages = series.get((vm, "collectd_balloon_duration_seconds", "stats_age"), {})
            for key in ((vm, "collectd_balloon_gauge", "state"),
                        (vm, "collectd_balloon_duration_seconds", "polling_interval")) + \
                    (((vm, "collectd_balloon_duration_seconds", "stats_age"),) if ages else ()):
                got = count_in_cycles(series.get(key, {}))
                expected += len(bounds)
                arrived += got
                if got < len(bounds) and len(lost_examples) < 10:
                    lost_examples.append("%s/%s %s %s: %d of %d reads" % (h, vm, key[1], key[2], got, len(bounds)))
            # The last_updates the reads of the window saw: read time - stats age. (A read whose
            # stats age was lost is counted lost above.)
            lus = {round(t - a) for t, a in ages.items() if t1 <= t <= t2}
            for kind in kinds:
                k = (vm,) + kind
                got = len(lus & set(series.get(k, {})))
                expected += len(lus)
                arrived += got
                if got < len(lus) and len(lost_examples) < 10:
                    lost_examples.append("%s/%s %s %s: %d of %d samples" % (h, vm, k[1], k[2], got, len(lus)))
    json.dump({"expected": expected, "arrived": arrived, "lost": expected - arrived,
               "cycles_lost": missing_cycles, "vms_missing": missing_vms, "examples": lost_examples},
              sys.stdout)
    print()
    return 0


def main():
    cmd = sys.argv[2]
    a = sys.argv[3:]
    if cmd == "wait-vms":
        return wait_vms(int(a[0]), float(a[1]), float(a[2]))
    if cmd == "delays":
        return delays(a[0], float(a[1]))
    if cmd == "account":
        return account(float(a[0]), float(a[1]), float(a[2]), int(a[3]), a[4:])
    raise SystemExit("unknown command %r" % cmd)


if __name__ == "__main__":
    sys.exit(main())
