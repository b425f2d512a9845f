# tests/fleet.mk: many hypervisors into one Prometheus through collectd's network plugin
# (tests/fleet/run.sh; README, "Many hypervisors"). Root only; skipped (77) under BALLOON_SKIP_SLOW=1.
TESTS += tests/fleet/run.sh
EXTRA_DIST += \
	tests/fleet/run.sh \
	tests/fleet/lib.sh \
	tests/fleet/conf.sh \
	tests/fleet/check.py \
	tests/fleet/bench.sh \
	tests/fleet/bench.py
