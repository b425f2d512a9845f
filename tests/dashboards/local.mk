# tests/dashboards/: dashboards/ checked by promtool and installed (static.sh, every pass), and on the
# real collectd, Prometheus, Alertmanager and Chromium (run.sh, skipped under BALLOON_SKIP_SLOW=1).
TESTS += tests/dashboards/static.sh tests/dashboards/run.sh
EXTRA_DIST += \
	tests/dashboards/static.sh \
	tests/dashboards/run.sh \
	tests/dashboards/check_prometheus.py \
	tests/dashboards/check_grafana.py \
	tests/dashboards/browser_check.py \
	tests/dashboards/cdp.py

