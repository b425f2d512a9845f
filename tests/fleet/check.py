#!/usr/bin/env python3
"""tests/fleet/check.py: the fleet test's assertions, against the real Prometheus's HTTP API.

Run in the central namespace (Prometheus listens on that namespace's loopback). One subcommand per
phase of tests/fleet/run.sh; each prints what it saw and exits 1 with a FAIL line when an assertion
does not hold, 0 when all hold. Times are seconds since the epoch (floats).
"""
import argparse
import html
import json
import re
import sys
import time
import urllib.parse
import urllib.request

PREFIX = "collectd_balloon_"

# QEMU's stat (as balloonctl names it) -> the series write_prometheus makes of the plugin's value:
# (metric name, value of the type label or None).
STAT_SERIES = {
    "stat-free-memory": ("collectd_balloon_memory", "free"),
    "stat-total-memory": ("collectd_balloon_memory", "total"),
    "stat-available-memory": ("collectd_balloon_memory", "available"),
    "stat-disk-caches": ("collectd_balloon_memory", "disk_caches"),
    "stat-swap-in": ("collectd_balloon_swap_io_total", "in"),
    "stat-swap-out": ("collectd_balloon_swap_io_total", "out"),
    "stat-minor-faults": ("collectd_balloon_vmpage_faults_minflt_total", None),
    "stat-major-faults": ("collectd_balloon_vmpage_faults_majflt_total", None),
    "stat-htlb-pgalloc": ("collectd_balloon_vmpage_action_total", "htlb_pgalloc"),
    "stat-htlb-pgfail": ("collectd_balloon_vmpage_action_total", "htlb_pgfail"),
    "stat-oom-kills": ("collectd_balloon_total_events_total", "oom_kills"),
    "stat-alloc-stalls": ("collectd_balloon_total_events_total", "alloc_stalls"),
    "stat-async-scans": ("collectd_balloon_vmpage_action_total", "async_scans"),
    "stat-direct-scans": ("collectd_balloon_vmpage_action_total", "direct_scans"),
    "stat-async-reclaims": ("collectd_balloon_vmpage_action_total", "async_reclaims"),
    "stat-direct-reclaims": ("collectd_balloon_vmpage_action_total", "direct_reclaims"),
}
LAST_UPDATE = ("collectd_balloon_timestamp", "last_update")
STATS_AGE = ("collectd_balloon_duration_seconds", "stats_age")
POLLING_INTERVAL = ("collectd_balloon_duration_seconds", "polling_interval")
STATE = ("collectd_balloon_gauge", "state")
# balloonctl's state names -> the plugin's gauge-state codes (README, "Metrics").
STATE_CODES = {"ok": 0, "never answered": 1, "stale": 2, "no balloon": 3, "failed": 4, "late": 5}

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def finish(what):
    if failures:
        sys.exit(1)
    print("PASS: " + what)


class Prometheus:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def get(self, path, **params):
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=30) as r:
            doc = json.load(r)
        if doc.get("status") != "success":
            raise RuntimeError("Prometheus refused %s: %r" % (url, doc))
        return doc["data"]

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = "%.3f" % at
        return self.get("/api/v1/query", **params)["result"]

    def firing(self):
        """The alerts that fire now, as sorted tuples of their labels' items."""
        return {tuple(sorted(a["labels"].items())) for a in self.get("/api/v1/alerts")["alerts"]
                if a["state"] == "firing"}


def key_of(metric):
    """A series' identity: (instance, VM, metric name, type label)."""
    return (metric.get("instance"), metric.get("balloon"), metric["__name__"], metric.get("type"))


def sample_times(prom, instances, window=60):
    """{series key: time of its newest sample} of every balloon series of instances that has a
    sample in the last window seconds. From the raw samples: timestamp() of anything but a plain
    selector is the evaluation's time, not the sample's."""
    sel = '{__name__=~"%s.+",instance=~"%s"}[%ds]' % (PREFIX, "|".join(instances), window)
    return {key_of(r["metric"]): max(float(t) for t, _ in r["values"]) for r in prom.query(sel)}


def expected_series(host, dom):
    """The series the plugin sends for one domain of balloonctl's `stats --json`."""
    vm = dom["domain"]
    keys = {(host, vm) + STATE, (host, vm) + POLLING_INTERVAL}
    if dom.get("last_update"):
        keys |= {(host, vm) + LAST_UPDATE, (host, vm) + STATS_AGE}
        for stat, v in dom["stats"].items():
            if v is not None and stat in STAT_SERIES:
                keys.add((host, vm) + STAT_SERIES[stat])
    return keys


def load_hosts(pairs):
    """[(host, [domain...])] from --hv HOST FILE pairs (balloonctl stats --json output)."""
    return [(h, json.load(open(f))) for h, f in pairs]


def wait(timeout, poll, what):
    """Calls poll() every 0.25 s until it returns a true value (returned) or timeout seconds passed
    (None, after a FAIL naming what)."""
    deadline = time.time() + timeout
    while True:
        got = poll()
        if got:
            return got
        if time.time() >= deadline:
            fail("%s: not within %.1f s" % (what, timeout))
            return None
        time.sleep(0.25)


def raw_samples(prom, host, vm, window):
    """{series key: {time: value}} of the samples of one VM over the last window seconds."""
    sel = '{__name__=~"%s.+",instance="%s",balloon="%s"}[%ds]' % (PREFIX, host, vm, window)
    out = {}
    for r in prom.query(sel):
        out[key_of(r["metric"])] = {float(t): float(v) for t, v in r["values"]}
    return out


def cmd_arrive(a, prom):
    """Every (hypervisor, VM) series is there, with the values balloonctl reported for the same
    last_update; nothing of the refused senders; the impostor's series under its own user only."""
    hosts = load_hosts(a.hv)
    expected = set()
    for host, doms in hosts:
        for d in doms:
            expected |= expected_series(host, d)
    # Each paused guest's sample at its last_update has to go through the plugin, the network, the
    # central collectd and a scrape.
    for host, doms in hosts:
        for d in doms:
            if not d.get("last_update"):
                continue
            vm, lu = d["domain"], d["last_update"]
            sel = 'collectd_balloon_timestamp{type="last_update",instance="%s",balloon="%s"}' % (host, vm)
            wait(a.timeout, lambda: any(float(r["value"][1]) == lu for r in prom.query(sel)),
                 "the sample of %s/%s at last_update %d in Prometheus" % (host, vm, lu))
    names = [h for h, _ in hosts]
    present = set(sample_times(prom, names))
    for k in sorted(expected - present, key=str):
        fail("series %s is missing" % (k,))
    for k in sorted(present - expected, key=str):
        fail("series %s was not expected (balloonctl does not report it)" % (k,))
    checked = 0
    for host, doms in hosts:
        for d in doms:
            vm = d["domain"]
            samples = raw_samples(prom, host, vm, 120)
            lu = d.get("last_update")
            if lu:
                for stat, v in d["stats"].items():
                    if v is None or stat not in STAT_SERIES:
                        continue
                    k = (host, vm) + STAT_SERIES[stat]
                    got = samples.get(k, {}).get(float(lu))
                    if got != float(v):
                        fail("%s at last_update %d: Prometheus has %r, balloonctl %r" % (k, lu, got, v))
                    checked += 1
                got = samples.get((host, vm) + LAST_UPDATE, {}).get(float(lu))
                if got != float(lu):
                    fail("%s/%s: last_update sample at %d is %r" % (host, vm, lu, got))
            states = samples.get((host, vm) + STATE, {})
            want = STATE_CODES.get(d["state"])
            if not states or states[max(states)] != want:
                fail("%s/%s: newest state %r, balloonctl says %r (%r)"
                     % (host, vm, states and states[max(states)], d["state"], want))
            intervals = samples.get((host, vm) + POLLING_INTERVAL, {})
            if not intervals or intervals[max(intervals)] != float(d["polling_interval"]):
                fail("%s/%s: newest polling interval %r, balloonctl says %r"
                     % (host, vm, intervals and intervals[max(intervals)], d["polling_interval"]))
    # The refused senders: not one series, whatever its labels.
    for name in a.refused:
        got = prom.query('{instance="%s"} or {balloon=~"%s-.*"}' % (name, name))
        if got:
            fail("the refused sender %r got series in: %r" % (name, [r["metric"] for r in got][:5]))
    # The impostor: its own user, another's Hostname: its VM under its user, not that Hostname.
    for user, claimed in a.impostor:
        mine = prom.query('collectd_balloon_gauge{type="state",balloon=~"%s-.*"}' % user)
        where = {r["metric"].get("instance") for r in mine}
        if where != {user}:
            fail("the impostor's VMs are under %r, not only under its user %r" % (sorted(where), user))
    json.dump(sorted(expected), open(a.save, "w"))
    finish("%d series of %d hypervisors, %d stat values equal to balloonctl's; %d senders refused"
           % (len(expected), len(hosts), checked, len(a.refused)))


def firing_of(prom, alert, instance=None):
    return {a for a in prom.firing() if dict(a).get("alertname") == alert
            and (instance is None or dict(a).get("instance") == instance)}


def others_alerts(prom, host):
    return {a for a in prom.firing() if dict(a).get("instance") != host}


def cmd_alerts(a, prom):
    """Saves the alerts that fire now, once they have been the same for 3 intervals."""
    last, since = None, time.time()
    deadline = time.time() + a.timeout
    while time.time() < deadline:
        now = prom.firing()
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= 3 * a.interval:
            break
        time.sleep(0.25)
    else:
        fail("the firing alerts did not settle within %.0f s: %r" % (a.timeout, last))
    got = set()
    for x in last or ():
        d = dict(x)
        got.add("%s:%s" % (d["alertname"], d.get("instance", "")) + ("/" + d["balloon"] if "balloon" in d else ""))
    if got != set(a.expect):
        fail("firing alerts %r, expected %r" % (sorted(got), sorted(a.expect)))
    json.dump(sorted(last or ()), open(a.save, "w"))
    finish("%d alerts firing, as expected: %s" % (len(last or ()), ", ".join(sorted(a.expect)) or "none"))


def load_alerts(path):
    return {tuple(tuple(p) for p in x) for x in json.load(open(path))}


def load_series(path):
    return {tuple(k) for k in json.load(open(path))}


def cmd_silent(a, prom):
    """After the kill of a hypervisor's collectd: its stopped-sending alert fires within 3 intervals
    and names it; the other hypervisors' series go on and their alerts stay as they were."""
    before = load_alerts(a.alerts)
    series = load_series(a.series)
    others = sorted({k[0] for k in series} - {a.host})
    fired = wait(max(0.0, a.since + 3 * a.interval - time.time()),
                 lambda: firing_of(prom, a.alert, a.host), "%s for %s" % (a.alert, a.host))
    took = time.time() - a.since
    if fired:
        print("%s fired for %s %.1f s after its collectd was killed (interval %g s)"
              % (a.alert, a.host, took, a.interval))
        for al in prom.get("/api/v1/alerts")["alerts"]:
            if al["labels"].get("alertname") != a.alert or al["state"] != "firing":
                continue
            if al["labels"].get("instance") != a.host or a.host not in al["annotations"].get("summary", ""):
                fail("the alert does not name the hypervisor %r: %r" % (a.host, al))
    # The others, for 2 more intervals: every series still gets new samples, alerts unchanged.
    start = time.time()
    old = sample_times(prom, others)
    deadline = time.time() + 3 * a.interval
    fresh = set()
    while time.time() < deadline and fresh != {k for k in series if k[0] in others}:
        now = sample_times(prom, others)
        fresh |= {k for k in series if k[0] in others and now.get(k, 0) > old.get(k, 0)}
        o = others_alerts(prom, a.host)
        want = {x for x in before if dict(x).get("instance") != a.host}
        if o != want:
            fail("the other hypervisors' alerts changed: %r, before %r" % (sorted(o), sorted(want)))
            break
        time.sleep(0.25)
    stalled = {k for k in series if k[0] in others} - fresh
    # A stats series advances only when the guest answers; state and stats age at every read.
    for k in sorted(stalled, key=str):
        fail("series %s of a hypervisor that runs got no new sample in %.0f s" % (k, time.time() - start))
    finish("%s named %s after %.1f s; %d series of %s went on" % (a.alert, a.host, took, len(fresh),
                                                                ", ".join(others)))


def cmd_resumed(a, prom):
    """After the hypervisor's collectd started again: every one of its series has a sample newer
    than the snapshot taken while it was dead, and its stopped-sending alert resolves, within
    a.timeout seconds of a.since."""
    before = {tuple(k): t for k, t in json.load(open(a.before)) if k[0] == a.host}

    def late():
        t = sample_times(prom, [a.host])
        return {k for k in before if t.get(k, 0) <= before[k]}
    wait(max(0.0, a.since + a.timeout - time.time()), lambda: not late() and not firing_of(prom, a.alert, a.host),
         "%s's series back and %s resolved" % (a.host, a.alert))
    for k in sorted(late(), key=str):
        fail("series %s has no sample since the restart" % (k,))
    if firing_of(prom, a.alert, a.host):
        fail("%s still fires for %s" % (a.alert, a.host))
    finish("%d series of %s back and %s resolved %.1f s after its collectd started"
           % (len(before), a.host, a.alert, time.time() - a.since))

def cmd_snapshot(a, prom):
    """Saves the time of every series' newest sample."""
    series = load_series(a.series)
    t = sample_times(prom, sorted({k[0] for k in series}))
    json.dump([[list(k), t.get(k, 0)] for k in sorted(series, key=str)], open(a.save, "w"))
    finish("newest samples of %d series saved" % len(series))


def cmd_back(a, prom):
    """After the central collectd's restart: every series has a sample newer than the snapshot taken
    while it was down (so one that came through the new process), within a.timeout seconds of
    a.since."""
    before = {tuple(k): t for k, t in json.load(open(a.before))}
    hosts = sorted({k[0] for k in before})

    def late():
        t = sample_times(prom, hosts)
        return {k for k in before if t.get(k, 0) <= before[k]}
    wait(max(0.0, a.since + a.timeout - time.time()), lambda: not late(), "every series back after the restart")
    for k in sorted(late(), key=str)[:20]:
        fail("series %s has no sample since the central collectd's restart" % (k,))
    finish("all %d series back %.1f s after the central collectd's restart"
           % (len(before), time.time() - a.since))

def label_values(prom, expr):
    """Grafana's label_values(SELECTOR, LABEL) over Prometheus's label values API."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", expr, re.S)
    if m is None:
        raise SystemExit("FAIL: cannot read the variable query %r" % expr)
    return set(prom.get("/api/v1/label/%s/values" % m.group(2), **{"match[]": m.group(1)}))


def cmd_dashboards(a, prom):
    """The dashboards across hypervisors: the Grafana dashboard's host variable lists every
    hypervisor that sends, its vm variable each one's VMs; the fleet console has a row, linked to
    the VM's page, for every (hypervisor, VM); each VM's page shows its hypervisor and VM."""
    series = load_series(a.series)
    vms = {}
    for host, vm, _, _ in series:
        vms.setdefault(host, set()).add(vm)
    hosts = set(vms) | set(a.also)
    variables = {v["name"]: v for v in json.load(open(a.grafana))["templating"]["list"]}

    def var_query(name):
        q = variables[name]["query"]
        return q["query"] if isinstance(q, dict) else q
    got = label_values(prom, var_query("host"))
    if got != hosts:
        fail("Grafana's host variable lists %r, not the hypervisors %r" % (sorted(got), sorted(hosts)))
    for host in sorted(vms):
        got = label_values(prom, var_query("vm").replace("$host", re.escape(host)))
        if got != vms[host]:
            fail("Grafana's vm variable for host %r lists %r, not %r" % (host, sorted(got), sorted(vms[host])))
    with urllib.request.urlopen(prom.url + "/consoles/" + a.console, timeout=30) as r:
        page = r.read().decode()
    rows = 0
    for host in sorted(vms):
        for vm in sorted(vms[host]):
            link = "?host=%s&amp;vm=%s" % (html.escape(host), html.escape(vm))
            if link not in page:
                fail("the fleet console has no row for %s/%s (no link %r)" % (host, vm, link))
                continue
            rows += 1
            url = prom.url + "/consoles/" + a.vm_console + "?" + urllib.parse.urlencode({"host": host, "vm": vm})
            with urllib.request.urlopen(url, timeout=30) as r:
                vm_page = r.read().decode()
            if html.escape(host) not in vm_page or html.escape(vm) not in vm_page:
                fail("the page of %s/%s does not name them" % (host, vm))
    for name in a.refused:
        if name in page:
            fail("the fleet console shows the refused sender %r" % name)
    finish("Grafana's host variable lists the %d hypervisors, its vm variable their VMs; the fleet console "
           "has the %d (hypervisor, VM) rows" % (len(hosts), rows))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--prom", required=True)
    p.add_argument("--interval", type=float, required=True)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("arrive")
    s.add_argument("--hv", nargs=2, action="append", default=[], metavar=("HOST", "STATS_JSON"))
    s.add_argument("--refused", action="append", default=[])
    s.add_argument("--impostor", nargs=2, action="append", default=[], metavar=("USER", "CLAIMED"))
    s.add_argument("--timeout", type=float, required=True)
    s.add_argument("--save", required=True)
    s = sub.add_parser("alerts")
    s.add_argument("--expect", action="append", default=[], metavar="ALERT:INSTANCE[/VM]")
    s.add_argument("--timeout", type=float, required=True)
    s.add_argument("--save", required=True)
    s = sub.add_parser("silent")
    s.add_argument("--host", required=True)
    s.add_argument("--alert", required=True)
    s.add_argument("--since", type=float, required=True)
    s.add_argument("--series", required=True)
    s.add_argument("--alerts", required=True)
    s = sub.add_parser("resumed")
    s.add_argument("--host", required=True)
    s.add_argument("--alert", required=True)
    s.add_argument("--since", type=float, required=True)
    s.add_argument("--before", required=True)
    s.add_argument("--timeout", type=float, required=True)
    s = sub.add_parser("dashboards")
    s.add_argument("--series", required=True)
    s.add_argument("--also", action="append", default=[], help="a sender with no series in --series")
    s.add_argument("--refused", action="append", default=[])
    s.add_argument("--grafana", required=True)
    s.add_argument("--console", required=True)
    s.add_argument("--vm-console", required=True)
    s = sub.add_parser("snapshot")
    s.add_argument("--series", required=True)
    s.add_argument("--save", required=True)
    s = sub.add_parser("back")
    s.add_argument("--since", type=float, required=True)
    s.add_argument("--before", required=True)
    s.add_argument("--timeout", type=float, required=True)
    a = p.parse_args()
    prom = Prometheus(a.prom)
    {"arrive": cmd_arrive, "alerts": cmd_alerts, "silent": cmd_silent, "resumed": cmd_resumed,
     "snapshot": cmd_snapshot, "back": cmd_back, "dashboards": cmd_dashboards}[a.cmd](a, prom)


if __name__ == "__main__":
    main()
