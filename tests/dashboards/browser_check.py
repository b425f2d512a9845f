"""The consoles in a real browser: headless Chromium loads the fleet page and per-VM pages from the
real Prometheus, and this checks what a person would see: every VM's row, every graph drawn with its
lines (an SVG path of at least two points per series), and no error in the page's console. It saves a
screenshot of the first per-VM page.

usage: browser_check.py CHROMIUM WORKDIR PROMETHEUS_URL SPEC_JSON SCREENSHOT
SPEC_JSON: {"rows": [[host, vm], ...], "duration": seconds,
            "vm_pages": [{"host": h, "vm": v, "graphs": [node id, ...], "absent": [node id, ...]}]}"""

import json
import os
import signal
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdp  # noqa: E402

# What each graph of the page shows, read from the page itself (Debian's prom_console.js keeps every
# PromConsole.Graph in _graph_registry).
GRAPHS_JS = """
(function () {
  if (typeof PromConsole === "undefined") return null;
  return PromConsole._graph_registry.map(function (g) {
    var error = g.graphTd.querySelector(".prom_graph_error");
    var series = 0;
    if (g.rendered_data) g.rendered_data.forEach(function (d) { series += d.data.result.length; });
    return {
      node: g.params.node.id,
      rendered: g.rickshawGraph !== null,
      error: error ? error.textContent : null,
      series: series,
      paths: Array.prototype.map.call(g.graphTd.querySelectorAll("svg path.path"),
                                      function (p) { return p.getAttribute("d") || ""; }),
    };
  });
})()
"""

ROWS_JS = """
Array.prototype.map.call(document.querySelectorAll("#cb-vms tr.cb-vm"), function (r) {
  return [r.querySelector(".cb-host").textContent, r.querySelector(".cb-name").textContent,
          r.querySelector(".cb-name a").getAttribute("href")];
})
"""


WIDTH = 1280


def points(d):
    """The points of an SVG path's d attribute: M and L commands (d3's linear lines)."""
    return sum(d.count(c) for c in "ML")


def check_fleet(browser, session, base, spec, failures):
    browser.navigate(session, base + "/consoles/collectd-balloon.html")
    rows = browser.evaluate(session, ROWS_JS)
    got = sorted((h, v) for h, v, _ in rows)
    want = sorted(tuple(r) for r in spec["rows"])
    if got != want:
        failures.append("the fleet page lists %r, expected %r." % (got, want))
    for host, vm, href in rows:
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)
        if q.get("host") != [host] or q.get("vm") != [vm]:
            failures.append("the row of %r on %r links to %r." % (vm, host, href))
    print("fleet page: %d VM rows" % len(rows))


def check_vm_page(browser, session, base, page, duration, failures):
    query = urllib.parse.urlencode({"host": page["host"], "vm": page["vm"]})
    hash_ = "#pctc" + urllib.parse.quote(json.dumps({"duration": duration, "endTime": 0}))
    browser.navigate(session, base + "/consoles/collectd-balloon-vm.html?" + query + hash_)
    deadline = time.monotonic() + 30
    while True:
        graphs = browser.evaluate(session, GRAPHS_JS) or []
        if graphs and all(g["rendered"] or g["error"] for g in graphs):
            break
        if time.monotonic() > deadline:
            failures.append("the graphs of %r did not render in 30 s: %r" % (page["vm"], graphs))
            return
        time.sleep(0.2)
    by_node = {g["node"]: g for g in graphs}
    if sorted(by_node) != sorted(page["graphs"]):
        failures.append("the page of %r has the graphs %r, expected %r."
                        % (page["vm"], sorted(by_node), sorted(page["graphs"])))
    for node, g in sorted(by_node.items()):
        if not g["rendered"]:
            failures.append("graph %s of %r drew nothing: %s" % (node, page["vm"], g["error"]))
            continue
        if g["series"] < 1 or len(g["paths"]) != g["series"]:
            failures.append("graph %s of %r: %d series, %d lines drawn."
                            % (node, page["vm"], g["series"], len(g["paths"])))
        short = [d[:60] for d in g["paths"] if points(d) < 2 or "NaN" in d]
        if short:
            failures.append("graph %s of %r has lines without two points: %r" % (node, page["vm"], short))
    for node in page.get("absent", []):
        if browser.evaluate(session, "document.getElementById(%s) !== null" % json.dumps(node)):
            failures.append("the page of %r shows %s, which its guest does not send." % (page["vm"], node))
    print("page of %r: %s" % (page["vm"], ", ".join(
        "%s %d lines" % (n, len(g["paths"])) for n, g in sorted(by_node.items()))))


def main():
    # A TERM (or HUP) still closes the browser, which runs in a session of its own.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(1))
    chromium, workdir, base, spec_path, screenshot = sys.argv[1:6]
    spec = json.load(open(spec_path))
    failures = []
    browser = cdp.Browser(chromium, os.path.join(workdir, "chromium-profile"),
                          os.path.join(workdir, "chromium.log"))
    try:
        session = browser.new_page(WIDTH, 900)
        check_fleet(browser, session, base, spec, failures)
        for problem in browser.problems(session):
            failures.append("the fleet page's console: " + problem)
        for i, page in enumerate(spec["vm_pages"]):
            session = browser.new_page(WIDTH, 900)
            check_vm_page(browser, session, base, page, spec["duration"], failures)
            for problem in browser.problems(session):
                failures.append("the console of %r's page: %s" % (page["vm"], problem))
            if i == 0:
                browser.screenshot(session, screenshot, WIDTH)
                print("screenshot of %r's page: %s" % (page["vm"], screenshot))
    finally:
        browser.close()
    for f in failures:
        print("FAIL: " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
