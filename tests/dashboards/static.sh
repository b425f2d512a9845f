#!/bin/sh
# tests/dashboards/static.sh: dashboards/ without a running stack. promtool checks the rules, runs
# their unit tests (collectd-balloon.test.yml) and checks the example configuration; the Grafana
# dashboard passes check_grafana.py and promtool parses each of its queries; `make install-data`
# puts every file of dashboards/ under $(datadir)/collectd-balloon/, where the rules' tests pass too.
set -eu
: "${abs_top_builddir:?}" "${abs_top_srcdir:?}"
promtool=${PROMTOOL:-/usr/bin/promtool}
[ -x "$promtool" ] || { echo "SKIP: promtool is not installed (prometheus; scripts/install-deps.sh)" >&2; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
src="$abs_top_srcdir/dashboards"
T=$(mktemp -d /tmp/dashboards-static.XXXXXX)
trap 'rm -rf "$T"' EXIT

"$promtool" check rules "$src/prometheus/collectd-balloon.rules.yml" || fail "promtool check rules."
(cd "$src/prometheus" && "$promtool" test rules collectd-balloon.test.yml) || fail "promtool test rules."
(cd "$src/prometheus" && "$promtool" check config prometheus.yml) || fail "promtool check config prometheus.yml."

python3 "$abs_top_srcdir/tests/dashboards/check_grafana.py" "$src/grafana/collectd-balloon.json" \
    "$T/grafana-queries.yml" || fail "the Grafana dashboard (above)."
"$promtool" check rules "$T/grafana-queries.yml" || fail "a Grafana query is not valid PromQL (above)."

# The installation, into a scratch root.
make -s -C "$abs_top_builddir" install-data DESTDIR="$T/root" >"$T/install.log" 2>&1 \
    || { cat "$T/install.log" >&2; fail "make install-data failed."; }
datadir=$(make -s -C "$abs_top_builddir" -f Makefile -f - print-datadir <<'EOF'
print-datadir:
	@echo $(datadir)
EOF
)
inst="$T/root$datadir/collectd-balloon"
for f in prometheus/collectd-balloon.rules.yml prometheus/collectd-balloon.test.yml prometheus/prometheus.yml \
         prometheus/consoles/collectd-balloon.html prometheus/consoles/collectd-balloon-vm.html \
         prometheus/console_libraries/collectd-balloon.lib grafana/collectd-balloon.json; do
    cmp -s "$src/$f" "$inst/$f" || fail "make install did not put dashboards/$f into $datadir/collectd-balloon/$f."
done
(cd "$inst/prometheus" && "$promtool" test rules collectd-balloon.test.yml >/dev/null) \
    || fail "the installed rules fail their tests."
echo "PASS: rules, their tests, the example configuration and the Grafana queries; installed under $datadir/collectd-balloon"
