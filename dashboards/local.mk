# dashboards/: Prometheus rules and their unit tests, an example scrape configuration, console
# templates and their library, and the Grafana dashboard. `make install` puts them under
# $(datadir)/collectd-balloon/ (README, "Dashboards and alerts").
dashboardsdir = $(datadir)/collectd-balloon
dashboards_prometheusdir = $(dashboardsdir)/prometheus
dist_dashboards_prometheus_DATA = \
	dashboards/prometheus/collectd-balloon.rules.yml \
	dashboards/prometheus/collectd-balloon.test.yml \
	dashboards/prometheus/prometheus.yml
dashboards_consolesdir = $(dashboards_prometheusdir)/consoles
dist_dashboards_consoles_DATA = \
	dashboards/prometheus/consoles/collectd-balloon.html \
	dashboards/prometheus/consoles/collectd-balloon-vm.html
dashboards_librariesdir = $(dashboards_prometheusdir)/console_libraries
dist_dashboards_libraries_DATA = \
	dashboards/prometheus/console_libraries/collectd-balloon.lib
dashboards_grafanadir = $(dashboardsdir)/grafana
dist_dashboards_grafana_DATA = \
	dashboards/grafana/collectd-balloon.json
EXTRA_DIST += dashboards/collectd-balloon-vm.png

include dashboards/fleet/local.mk
