"""The dashboards against the real stack: balloon-sim's guests, read by the real collectd (balloon +
write_prometheus), scraped every second by the real Prometheus with collectd-balloon's rules, which
sends its alerts to a real Alertmanager.

- The alerts: exactly the expected (alert, VM) pairs fire, and the Alertmanager lists the stale one.
- The Grafana dashboard: every variable's query lists the expected hosts and VMs (the driverless VM
  too); every panel's every query, its variables substituted as Grafana 10/11 does, is valid and
  returns, for each VM, exactly the series expected, with the values `balloonctl stats --json` reports
  for the same last_update (rates: Prometheus's extrapolation over the raw samples, recomputed here).
- The recording rules: their series for the right VMs, and on the frozen (stale) guest their values
  from balloonctl's.

usage: check_prometheus.py SPEC_JSON
SPEC_JSON: {"prometheus": url, "alertmanager": url, "balloonctl": path, "qmp_dir": dir,
            "grafana": path, "host": collectd Hostname, "vms": [names],
            "alerts": [[alertname, vm], ...]}"""

import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_grafana import RATE_INTERVAL, interpolate, leftover, with_vm  # noqa: E402

STATE_CODES = {"ok": 0, "never answered": 1, "stale": 2, "no balloon": 3}
MEMORY = {"free": "stat-free-memory", "total": "stat-total-memory",
          "available": "stat-available-memory", "disk_caches": "stat-disk-caches"}
EVENTS = {"oom_kills": "stat-oom-kills", "alloc_stalls": "stat-alloc-stalls"}

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


class Prometheus:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def get(self, path, **params):
        q = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen("%s%s?%s" % (self.url, path, q), timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        if body.get("status") != "success":
            raise ValueError("%s %r: %s" % (path, params, body.get("error", body)))
        return body["data"]

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = "%.3f" % at
        data = self.get("/api/v1/query", **params)
        return data["result"]


def wait_for(what, seconds, check):
    """Calls check() until it returns a true value, for at most `seconds`; returns that value."""
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise SystemExit("FAIL: %s (waited %d s)." % (what, seconds))
        time.sleep(0.25)


def same(a, b):
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


# --- Prometheus's rate() and increase() (promql/functions.go extrapolatedRate, 2.42) -------------

def extrapolated(samples, range_start, range_end, range_s, is_rate):
    """samples: [(t seconds, value)] of a counter inside the range. None below two samples."""
    if len(samples) < 2:
        return None
    result = samples[-1][1] - samples[0][1]
    last = 0.0
    for _, v in samples:
        if v < last:
            result += last
        last = v
    to_start = samples[0][0] - range_start
    to_end = range_end - samples[-1][0]
    sampled = samples[-1][0] - samples[0][0]
    average = sampled / (len(samples) - 1)
    if result > 0 and samples[0][1] >= 0:
        to_zero = sampled * (samples[0][1] / result)
        if to_zero < to_start:
            to_start = to_zero
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    result = result * (interval / sampled)
    return result / range_s if is_rate else result


def duration_seconds(text):
    m = re.fullmatch(r"(\d+)([smh])", text)
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


def raw_samples(prom, selector, window, at):
    """{type label or "": [(t, v)]} of a selector's raw samples in [at - window, at]."""
    out = {}
    for r in prom.query("%s[%s]" % (selector, window), at):
        out[r["metric"].get("type", "")] = [(float(t), float(v)) for t, v in r["values"]]
    return out


# --- What each panel must show for one VM ---------------------------------------------------------

# Queries of what the plugin sends at every read (state, stats age, polling interval) are asked for
# now, as balloonctl's report is of now (the stale guest's state at its last_update was still ok);
# queries of the guest's stats at the VM's last_update.
READ_TIME_QUERIES = {("VMs", "A"), ("VMs", "E"), ("VMs", "F"), ("State", "A"), ("Stats age", "A"),
                     ("Stats age and polling interval", "A")}


class Context:
    """One VM: balloonctl's report, and the time at which Prometheus is asked: just after the report's
    last_update (now for a guest that never answered)."""

    def __init__(self, prom, host, vm, report, at):
        self.prom, self.host, self.vm, self.report, self.at = prom, host, vm, report, at
        self.sel = 'instance=%s,balloon=%s' % (json.dumps(host), json.dumps(vm))

    def stat(self, name):
        return self.report["stats"].get(name)

    def stats_present(self):
        return self.report["last_update"] > 0

    def memory(self, types=MEMORY):
        return {t: float(self.stat(s)) for t, s in types.items() if self.stat(s) is not None}

    def rate(self, metric, types=None, is_rate=True):
        window = duration_seconds(RATE_INTERVAL)
        raw = raw_samples(self.prom, "%s{%s}" % (metric, self.sel), RATE_INTERVAL, self.at)
        out = {}
        for t, samples in raw.items():
            if types is not None and t not in types:
                continue
            v = extrapolated(samples, self.at - window, self.at, window, is_rate)
            if v is not None:
                out[t] = v
        return out

    def age(self, sample):
        """stats_age is the read's time minus the last-update that read saw: one of the
        last-updates Prometheus has (within its lookback: the stale guest's is old)."""
        value, stamp = sample
        seen = raw_samples(self.prom, 'collectd_balloon_timestamp{type="last_update",%s}' % self.sel,
                           "5m", stamp).get("last_update", [])
        if not any(abs((stamp - lu) - value) < 0.002 for _, lu in seen):
            return "stats age %r at %.3f matches none of the last-updates %r" % (value, stamp, seen)
        return None


def expected_series(panel, ref, c):
    """{type label or "": value, or a function(sample) -> error or None} for one VM."""
    state = {"state": STATE_CODES[c.report["state"]]}
    interval = {"polling_interval": float(c.report["polling_interval"])}
    total, free = c.stat("stat-total-memory"), c.stat("stat-free-memory")
    avail = c.stat("stat-available-memory")
    ratio = {"": avail / total} if avail is not None and total else {}
    age = {"stats_age": c.age} if c.stats_present() else {}
    table = {
        ("VMs", "A"): lambda: state,
        ("VMs", "B"): lambda: c.memory({"total": "stat-total-memory"}),
        ("VMs", "C"): lambda: ratio,
        ("VMs", "D"): lambda: c.rate("collectd_balloon_swap_io_total", {"in"}),
        ("VMs", "E"): lambda: age,
        ("VMs", "F"): lambda: interval,
        ("State", "A"): lambda: state,
        ("Total memory", "A"): lambda: c.memory({"total": "stat-total-memory"}),
        ("Available", "A"): lambda: ratio,
        ("Stats age", "A"): lambda: age,
        ("Memory", "A"): lambda: c.memory(),
        ("Memory", "B"): lambda: {"": float(total - free)} if total is not None else {},
        ("Swap", "A"): lambda: c.rate("collectd_balloon_swap_io_total"),
        ("Page faults", "A"): lambda: {"": v for v in c.rate("collectd_balloon_vmpage_faults_minflt_total").values()},
        ("Page faults", "B"): lambda: {"": v for v in c.rate("collectd_balloon_vmpage_faults_majflt_total").values()},
        ("OOM kills and allocation stalls (since boot)", "A"): lambda: c.memory(EVENTS),
        ("Stats age and polling interval", "A"): lambda: dict(age, **interval),
    }
    if (panel, ref) not in table:
        fail("the test has no expectation for panel %r query %s: add one." % (panel, ref))
        return None
    return table[(panel, ref)]()


def check_expression(prom, panel, ref, expr, c):
    at = time.time() if (panel, ref) in READ_TIME_QUERIES else c.at
    try:
        result = prom.query(expr, at)
    except ValueError as e:
        fail("panel %r query %s is not valid PromQL: %s" % (panel, ref, e))
        return
    got = {}
    for r in result:
        m = r["metric"]
        if m.get("instance") != c.host or m.get("balloon") != c.vm:
            continue
        key = m.get("type", "")
        if key in got:
            fail("panel %r query %s returns two series for %r type %r." % (panel, ref, c.vm, key))
        got[key] = (float(r["value"][1]), float(r["value"][0]))
    want = expected_series(panel, ref, c)
    if want is None:
        return
    if sorted(got) != sorted(want):
        fail("panel %r query %s for %r: series %r, expected %r (%s)."
             % (panel, ref, c.vm, sorted(got), sorted(want), expr))
        return
    for key, w in want.items():
        value = got[key][0]
        if callable(w):
            # The sample's own timestamp, for values that depend on it.
            stamp = prom.query("timestamp(%s)" % expr, at)
            stamp = [float(r["value"][1]) for r in stamp
                     if r["metric"].get("balloon") == c.vm and r["metric"].get("type", "") == key]
            err = w((value, stamp[0])) if stamp else "no timestamp"
            if err:
                fail("panel %r query %s for %r: %s." % (panel, ref, c.vm, err))
        elif not same(value, w):
            fail("panel %r query %s for %r type %r: %r, expected %r (balloonctl, last_update %d)."
                 % (panel, ref, c.vm, key, value, w, c.report["last_update"]))


# --- The checks -----------------------------------------------------------------------------------

def firing(prom):
    return sorted((a["labels"]["alertname"], a["labels"].get("balloon", a["labels"].get("instance")))
                  for a in prom.get("/api/v1/alerts")["alerts"] if a["state"] == "firing")


def check_alerts(prom, spec):
    want = sorted(tuple(a) for a in spec["alerts"])
    wait_for("the alerts %r did not all fire; firing: %r" % (want, firing(prom)), 60,
             lambda: set(want) <= set(firing(prom)))
    # Every rule has been evaluated a few more times: still exactly these.
    time.sleep(3)
    got = firing(prom)
    if got != want:
        fail("firing alerts %r, expected exactly %r." % (got, want))
    print("alerts firing: %s" % ", ".join("%s(%s)" % a for a in got))

    def listed():
        with urllib.request.urlopen(spec["alertmanager"] + "/api/v2/alerts", timeout=10) as r:
            alerts = json.load(r)
        return [a for a in alerts if a["labels"].get("alertname") == "CollectdBalloonStatsStale"]

    stale_vm = [vm for name, vm in want if name == "CollectdBalloonStatsStale"]
    got_am = wait_for("the Alertmanager did not receive the stale alert", 30, listed)
    names = sorted(a["labels"].get("balloon") for a in got_am)
    if names != stale_vm:
        fail("the Alertmanager lists the stale alert for %r, expected %r." % (names, stale_vm))
    for a in got_am:
        if spec["host"] not in a["annotations"].get("summary", "") or \
                a["labels"]["balloon"] not in a["annotations"].get("description", ""):
            fail("the stale alert's annotations do not name the VM and host: %r" % a["annotations"])
    print("Alertmanager lists: CollectdBalloonStatsStale(%s)" % ", ".join(names))


def balloonctl_reports(spec):
    out = subprocess.run([spec["balloonctl"], "--qmp-dir", spec["qmp_dir"], "stats", "--json"],
                         capture_output=True, timeout=30)
    # Exit 1 when some domain did not answer (the driverless and stuck guests): still a report.
    if out.returncode not in (0, 1):
        raise SystemExit("FAIL: balloonctl stats --json: %s" % out.stderr.decode())
    return {r["domain"]: r for r in json.loads(out.stdout)}


def check_grafana(prom, spec, reports):
    dash = json.load(open(spec["grafana"]))
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    if variables["datasource"]["type"] != "datasource" or variables["datasource"]["query"] != "prometheus":
        fail("the dashboard has no Prometheus data source variable.")

    now = time.time()

    def label_values(query, host):
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query["query"])
        expr = interpolate(m.group(1), host)
        if leftover(expr):
            fail("variable query %r keeps %s after interpolation." % (query["query"], leftover(expr)))
        return sorted(prom.get("/api/v1/label/%s/values" % m.group(2), **{
            "match[]": expr, "start": "%.3f" % (now - 3600), "end": "%.3f" % now}))

    hosts = label_values(variables["host"]["query"], None)
    if hosts != [spec["host"]]:
        fail("the host variable lists %r, expected %r." % (hosts, [spec["host"]]))
    for host, want in ((None, sorted(spec["vms"])), (spec["host"], sorted(spec["vms"])), ("elsewhere", [])):
        vms = label_values(variables["vm"]["query"], host)
        if vms != want:
            fail("with host %r the vm variable lists %r, expected %r." % (host, vms, want))
    print("variables: host %r, vm %r" % (hosts, label_values(variables["vm"]["query"], None)))

    # Every target of every panel, for every VM, at a time just after that VM's last_update.
    checked = 0
    for panel in dash["panels"]:
        if panel["type"] == "row":
            continue
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            fail("panel %r does not use the data source variable." % panel["title"])
        for target in panel["targets"]:
            if target.get("datasource", {}).get("uid") != "${datasource}":
                fail("panel %r query %s does not use the data source variable." % (panel["title"], target["refId"]))
            for vm in spec["vms"]:
                r = reports[vm]
                at = r["last_update"] + 0.5 if r["last_update"] > 0 else time.time()
                c = Context(prom, spec["host"], vm, r, at)
                expr = with_vm(interpolate(target["expr"], None), vm)
                if leftover(expr):
                    fail("panel %r query %s keeps %s after interpolation." % (panel["title"], target["refId"], leftover(expr)))
                    continue
                check_expression(prom, panel["title"], target["refId"], expr, c)
                checked += 1
    print("Grafana: %d panel queries checked against balloonctl, %d VMs each" % (checked // len(spec["vms"]), len(spec["vms"])))


def wait_until_scraped(prom, spec, reports):
    """Until Prometheus has, for each VM with stats, the sample of balloonctl's last_update. Returns the
    VMs of which it has a later one instead: the plugin, reading once an interval while the guest also
    updates once an interval, read the update before and the one after that one (a read late on a loaded
    machine), so the report is to be taken again; fails when neither comes."""
    skipped = []
    for vm, r in reports.items():
        if r["last_update"] <= 0:
            continue
        sel = 'collectd_balloon_timestamp{type="last_update",instance=%s,balloon=%s}' % (
            json.dumps(spec["host"]), json.dumps(vm))

        def seen():
            if any(float(x["value"][1]) == r["last_update"] for x in prom.query(sel, r["last_update"] + 0.5)):
                return "exact"
            if any(float(x["value"][1]) > r["last_update"] for x in prom.query(sel)):
                return "later"
            return None

        if wait_for("Prometheus never got the sample of %r at last_update %d" % (vm, r["last_update"]), 15,
                    seen) == "later":
            skipped.append(vm)
    return skipped


def scraped_reports(prom, spec):
    """balloonctl's reports, each of a last_update that Prometheus has a sample of (taken again, at most
    5 times, while the plugin skipped one)."""
    for attempt in range(5):
        reports = balloonctl_reports(spec)
        if sorted(reports) != sorted(spec["vms"]):
            raise SystemExit("FAIL: balloonctl reports %r, expected %r." % (sorted(reports), sorted(spec["vms"])))
        skipped = wait_until_scraped(prom, spec, reports)
        if not skipped:
            return reports
        print("note: the plugin did not read the last_update balloonctl reported for %s (it read a later one); "
              "asking balloonctl again" % ", ".join(skipped))
    raise SystemExit("FAIL: 5 reports of balloonctl in a row had a last_update the plugin did not read.")


def check_recording_rules(prom, spec, reports):
    rules = [r for g in prom.get("/api/v1/rules")["groups"] for r in g["rules"] if r["type"] == "recording"]
    stuck = [vm for name, vm in spec["alerts"] if name == "CollectdBalloonStatsStale"][0]
    with_stats = sorted(vm for vm, r in reports.items() if r["last_update"] > 0)
    with_available = sorted(vm for vm in with_stats if reports[vm]["stats"].get("stat-available-memory") is not None)

    def counted(metric):
        """The VMs of which Prometheus has two samples of `metric` in 5 minutes: what a rate needs."""
        return sorted({r["metric"]["balloon"] for r in prom.query("count_over_time(%s[5m]) >= 2" % metric)})

    want_vms = {
        "balloon:memory_used:bytes": with_stats,
        "balloon:memory_available:ratio": with_available,
        "balloon:swap_io_bytes:rate5m": counted("collectd_balloon_swap_io_total"),
        "balloon:vmpage_faults_minflt:rate5m": counted("collectd_balloon_vmpage_faults_minflt_total"),
        "balloon:vmpage_faults_majflt:rate5m": counted("collectd_balloon_vmpage_faults_majflt_total"),
    }
    for name in ("balloon:swap_io_bytes:rate5m", "balloon:vmpage_faults_minflt:rate5m"):
        if want_vms[name] != with_stats and sorted(set(with_stats) - set(want_vms[name])) != [stuck]:
            fail("Prometheus has fewer than two samples of the counters of %r."
                 % sorted(set(with_stats) - set(want_vms[name])))
    for rule in rules:
        name = rule["name"]
        if rule.get("health") != "ok":
            fail("recording rule %s: %s" % (name, rule.get("lastError")))
        result = prom.query(name)
        if name == "instance:collectd_balloon_last_read:timestamp_seconds":
            got = [(r["metric"].get("instance"), float(r["value"][1])) for r in result]
            if [h for h, _ in got] != [spec["host"]] or not time.time() - 5 < got[0][1] <= time.time():
                fail("%s is %r, expected the last few seconds for %r." % (name, got, spec["host"]))
            continue
        if name == "instance:collectd_balloon_polling_interval:max_seconds":
            # The longest polling interval balloonctl reports (NaN, unknown, is left out).
            want = max(float(r["polling_interval"]) for r in reports.values() if r.get("polling_interval"))
            got = [(r["metric"].get("instance"), float(r["value"][1])) for r in result]
            if got != [(spec["host"], want)]:
                fail("%s is %r, expected %r for %r." % (name, got, want, spec["host"]))
            continue
        if name not in want_vms:
            fail("the test has no expectation for recording rule %s: add one." % name)
            continue
        vms = sorted({r["metric"]["balloon"] for r in result})
        if vms != want_vms[name]:
            fail("recording rule %s has series for %r, expected %r." % (name, vms, want_vms[name]))
    # The stale guest's stats no longer move: the rules' values follow from balloonctl's alone.
    s = reports[stuck]["stats"]
    sel = "{instance=%s,balloon=%s}" % (json.dumps(spec["host"]), json.dumps(stuck))
    for name, want in (("balloon:memory_used:bytes", s["stat-total-memory"] - s["stat-free-memory"]),
                       ("balloon:memory_available:ratio", s["stat-available-memory"] / s["stat-total-memory"])):
        got = [float(r["value"][1]) for r in prom.query(name + sel)]
        if len(got) != 1 or not same(got[0], want):
            fail("%s of the stale guest %r is %r, expected %r from balloonctl." % (name, stuck, got, want))
    # Its rates: the last evaluation's value is Prometheus's extrapolation over the frozen samples.
    for name, metric in (("balloon:vmpage_faults_minflt:rate5m", "collectd_balloon_vmpage_faults_minflt_total"),
                         ("balloon:swap_io_bytes:rate5m", "collectd_balloon_swap_io_total")):
        for r in prom.query("%s%s[3s]" % (name, sel)):
            t, v = float(r["values"][-1][0]), float(r["values"][-1][1])
            raw = raw_samples(prom, metric + sel, "5m", t).get(r["metric"].get("type", ""), [])
            want = extrapolated(raw, t - 300, t, 300, True)
            if want is None or not same(v, want):
                fail("%s%r of the stale guest at %.3f is %r, expected %r from its samples %r."
                     % (name, r["metric"].get("type", ""), t, v, want, raw))
    print("recording rules: %d, series for the expected VMs, the stale guest's values from balloonctl" % len(rules))


def main():
    spec = json.load(open(sys.argv[1]))
    prom = Prometheus(spec["prometheus"])
    wait_for("not every VM has a state in Prometheus", 30, lambda: sorted(
        r["metric"]["balloon"] for r in prom.query('collectd_balloon_gauge{type="state"}')) == sorted(spec["vms"]))
    check_alerts(prom, spec)
    reports = scraped_reports(prom, spec)
    check_grafana(prom, spec, reports)
    check_recording_rules(prom, spec, reports)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
