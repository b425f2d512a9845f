# agent/: the monitoring core (libagent.la, no collectd headers) and balloonctl.
noinst_LTLIBRARIES += agent/libagent.la
agent_libagent_la_CFLAGS = $(AM_CFLAGS) $(YAJL_CFLAGS) $(LIBVIRT_CFLAGS) $(LIBVIRT_QEMU_CFLAGS)
agent_libagent_la_LIBADD = $(YAJL_LIBS) $(LIBVIRT_QEMU_LIBS) $(LIBVIRT_LIBS)
agent_libagent_la_SOURCES = \
	agent/bal_error.c agent/bal_error.h \
	agent/bal_log.c agent/bal_log.h \
	agent/bal_clock.c agent/bal_clock.h \
	agent/bal_stats.c agent/bal_stats.h \
	agent/bal_text.c agent/bal_text.h \
	agent/bal_limits.c agent/bal_limits.h \
	agent/bal_summary.c agent/bal_summary.h \
	agent/bal_transport.h \
	agent/bal_sample.c agent/bal_sample.h \
	agent/bal_agent.h
# QMP messages and the QMP socket transport
agent_libagent_la_SOURCES += agent/bal_qmp.c agent/bal_qmp.h \
	agent/bal_json.c agent/bal_json.h \
	agent/bal_transport.c \
	agent/bal_qmp_listing.c agent/bal_qmp_listing.h \
	agent/bal_qmp_conn.c agent/bal_qmp_conn.h \
	agent/bal_qmp_socket.c agent/bal_qmp_socket.h
# libvirt transport: its errors, calls with a deadline, event loop, domain-handle cache, connection
agent_libagent_la_SOURCES += agent/bal_libvirt.c agent/bal_libvirt.h \
	agent/bal_lv_err.c agent/bal_lv_err.h \
	agent/bal_lv_call.c agent/bal_lv_call.h \
	agent/bal_lv_loop.c agent/bal_lv_loop.h \
	agent/bal_lv_cache.c agent/bal_lv_cache.h \
	agent/bal_lv_conn.c agent/bal_lv_conn.h
# domains, polling state machine, pool, agent core
agent_libagent_la_SOURCES += agent/bal_filter.c agent/bal_filter.h \
	agent/bal_regex.c agent/bal_regex.h \
	agent/bal_pool.c agent/bal_pool.h \
	agent/bal_jobs.c agent/bal_jobs.h \
	agent/bal_poller.c agent/bal_poller.h \
	agent/bal_agent_job.c agent/bal_agent_job.h \
	agent/bal_agent.c agent/bal_agent_config.c
# the transports by kind: what the plugin and balloonctl open an agent with
agent_libagent_la_SOURCES += agent/bal_open.c agent/bal_open.h
EXTRA_DIST += agent/README
# balloonctl, the operator's command-line look at the same agent
bin_PROGRAMS += agent/balloonctl
dist_man_MANS += agent/balloonctl.1
agent_balloonctl_SOURCES = agent/balloonctl.c
agent_balloonctl_CFLAGS = $(AM_CFLAGS) $(YAJL_CFLAGS)
agent_balloonctl_LDADD = agent/libagent.la $(YAJL_LIBS)
