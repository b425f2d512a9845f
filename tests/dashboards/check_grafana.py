"""dashboards/grafana/collectd-balloon.json without Grafana: what an import into Grafana 10/11 needs
(schema, a Prometheus data source variable used by every panel and query, the host and vm variables,
unique ids and refIds, a layout within 24 columns where no two panels overlap, no variable that is
not defined), and every query with its variables substituted as Grafana does, written out as a rules
file for `promtool check rules` to parse.

Also the module of Grafana's interpolation that check_prometheus.py uses.

usage: check_grafana.py DASHBOARD.json RULES_OUT"""

import json
import re
import sys

RATE_INTERVAL = "4s"  # Grafana's $__rate_interval for a 1 s scrape interval: 4 x scrape interval
BUILTINS = {"__rate_interval", "__interval", "__range", "__dashboard", "__url_time_range", "__data"}


def doublequote(value):
    """${var:doublequote}: the value in double quotes, double quotes escaped with a backslash."""
    return '"' + value.replace('"', '\\"') + '"'


def regex_escape(value):
    """A multi-value or include-all variable's value in a Prometheus regex matcher (Grafana's
    classic prometheusSpecialRegexEscape)."""
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"([$^*{}\[\]+?.()|])", r"\\\\\1", value)


def interpolate(expr, host):
    """$host and $__rate_interval; host None is All (the variable's allValue, inserted as is)."""
    out = expr.replace("$__rate_interval", RATE_INTERVAL)
    for ref in ("${host}", "$host"):
        out = out.replace(ref, ".+" if host is None else regex_escape(host))
    return out


def with_vm(expr, vm):
    return expr.replace("${vm:doublequote}", doublequote(vm))


def leftover(expr):
    """The first variable reference left in expr, or None."""
    m = re.search(r"\$\{?\w+", expr)
    return m.group(0) if m else None


def check(dash, failures):
    def fail(msg):
        failures.append(msg)

    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
        fail("schemaVersion %r is older than Grafana 10's." % dash.get("schemaVersion"))
    for key in ("uid", "title", "panels", "templating"):
        if not dash.get(key):
            fail("the dashboard has no %s." % key)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    ds = variables.get("datasource", {})
    if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        fail("no data source variable of type prometheus.")
    for name in ("host", "vm"):
        v = variables.get(name)
        if not v or v.get("type") != "query" or v.get("datasource", {}).get("uid") != "${datasource}":
            fail("no query variable %r on the data source variable." % name)
        elif not re.fullmatch(r"label_values\(.*,\s*\w+\)", v["query"]["query"]):
            fail("variable %r is not a label_values query: %r" % (name, v["query"]["query"]))
    if variables.get("vm", {}).get("multi") or variables.get("vm", {}).get("includeAll"):
        fail("the vm variable must be single-valued: the panels match it exactly (${vm:doublequote}).")

    required = {r["id"] for r in dash.get("__requires", []) if r["type"] == "panel"}
    ids, cells = set(), {}
    for p in dash["panels"]:
        title = p.get("title", "?")
        if p.get("id") in ids:
            fail("two panels have the id %r." % p.get("id"))
        ids.add(p.get("id"))
        g = p["gridPos"]
        if g["x"] < 0 or g["w"] < 1 or g["x"] + g["w"] > 24:
            fail("panel %r is outside the 24 columns: %r" % (title, g))
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    fail("panels %r and %r overlap at %r." % (cells[(x, y)], title, (x, y)))
                cells[(x, y)] = title
        if p["type"] == "row":
            continue
        if p["type"] not in required:
            fail("panel type %r of %r is not in __requires." % (p["type"], title))
        if p.get("datasource", {}).get("uid") != "${datasource}":
            fail("panel %r does not use the data source variable." % title)
        refs = [t["refId"] for t in p.get("targets", [])]
        if not refs or len(set(refs)) != len(refs):
            fail("panel %r has no queries, or two with one refId: %r" % (title, refs))
        for t in p.get("targets", []):
            if t.get("datasource", {}).get("uid") != "${datasource}":
                fail("panel %r query %s does not use the data source variable." % (title, t["refId"]))
            for m in re.finditer(r"\$\{?(\w+)", t.get("expr", "")):
                if m.group(1) not in variables and m.group(1) not in BUILTINS:
                    fail("panel %r query %s uses the undefined variable %s." % (title, t["refId"], m.group(0)))
    return variables


def queries(dash, vm):
    """(name, expression) of every variable and panel query, substituted for host All and vm."""
    out = []
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            m = re.fullmatch(r"label_values\((.*),\s*\w+\)", v["query"]["query"])
            out.append(("variable %s" % v["name"], interpolate(m.group(1), None)))
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append(("panel %r query %s" % (p["title"], t["refId"]), with_vm(interpolate(t["expr"], None), vm)))
    return out


def main():
    dash = json.load(open(sys.argv[1]))
    failures = []
    check(dash, failures)
    rules = []
    # A name with both quotes, a regex metacharacter and non-ASCII letters.
    for i, (name, expr) in enumerate(queries(dash, 'db "prod" l\'été (v1.2)')):
        if leftover(expr):
            failures.append("%s keeps %s after substitution." % (name, leftover(expr)))
        rules.append({"record": "grafana_query_%d" % i, "expr": expr})
    # JSON is YAML: promtool reads it as a rules file.
    json.dump({"groups": [{"name": "grafana", "rules": rules}]}, open(sys.argv[2], "w"), indent=1)
    for f in failures:
        print("FAIL: " + f, file=sys.stderr)
    print("%d queries of the Grafana dashboard written to %s" % (len(rules), sys.argv[2]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
