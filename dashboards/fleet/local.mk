# dashboards/fleet/: many hypervisors into one Prometheus (README, "Many hypervisors"). `make install`
# puts the examples under $(datadir)/collectd-balloon/fleet/.
dashboards_fleetdir = $(dashboardsdir)/fleet
dist_dashboards_fleet_DATA = \
	dashboards/fleet/hypervisor.conf \
	dashboards/fleet/central.conf \
	dashboards/fleet/passwd \
	dashboards/fleet/prometheus.yml
dashboards_fleet_directdir = $(dashboards_fleetdir)/direct
dist_dashboards_fleet_direct_DATA = \
	dashboards/fleet/direct/hypervisor.conf \
	dashboards/fleet/direct/prometheus.yml
