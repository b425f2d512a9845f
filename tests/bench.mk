# tests/bench.mk: the read-cycle benchmark (`make bench`, see README "Benchmarks") and the CI smoke
# test that keeps its harness working.
#
# plugin_host loads a collectd read plugin as collectd does; it provides collectd's plugin API
# itself, so it is linked with -export-dynamic for the dlopen'ed plugin to bind to those symbols.
# It includes collectd's headers (and so collectd's config.h), never ours.
check_PROGRAMS += tests/bench/plugin_host tests/bench/floor
tests_bench_plugin_host_SOURCES = \
	tests/bench/plugin_host.c \
	tests/bench/bench_config.c tests/bench/bench_config.h \
	tests/bench/bench_util.c tests/bench/bench_util.h \
	tests/bench/bench_pool.c tests/bench/bench_pool.h \
	tests/bench/bench_run.c tests/bench/bench_run.h
tests_bench_plugin_host_CPPFLAGS = $(AM_CPPFLAGS) $(COLLECTD_CPPFLAGS)
tests_bench_plugin_host_LDFLAGS = $(AM_LDFLAGS) -export-dynamic
tests_bench_plugin_host_LDADD = -ldl -lm

# The floor: bare concurrent virDomainQemuMonitorCommand calls, none of the agent's code (-p: each reply
# parsed with yajl_tree_parse).
tests_bench_floor_SOURCES = tests/bench/floor.c tests/bench/bench_util.c tests/bench/bench_util.h \
	tests/bench/bench_pool.c tests/bench/bench_pool.h tests/bench/bench_run.c tests/bench/bench_run.h
tests_bench_floor_CFLAGS = $(AM_CFLAGS) $(LIBVIRT_CFLAGS) $(LIBVIRT_QEMU_CFLAGS) $(YAJL_CFLAGS)
tests_bench_floor_LDADD = $(LIBVIRT_QEMU_LIBS) $(LIBVIRT_LIBS) $(YAJL_LIBS)

# The floor of the socket path: bare sendmsg/recv/yajl_tree_parse over balloon-sim's QMP sockets.
check_PROGRAMS += tests/bench/floor_qmp
tests_bench_floor_qmp_SOURCES = tests/bench/floor_qmp.c tests/bench/bench_util.c tests/bench/bench_util.h \
	tests/bench/bench_pool.c tests/bench/bench_pool.h tests/bench/bench_run.c tests/bench/bench_run.h
tests_bench_floor_qmp_CFLAGS = $(AM_CFLAGS) $(YAJL_CFLAGS)
tests_bench_floor_qmp_LDADD = $(YAJL_LIBS)

check_PROGRAMS += tests/bench/test_bench_config
tests_bench_test_bench_config_SOURCES = tests/bench/test_bench_config.c tests/bench/bench_config.c
tests_bench_test_bench_config_CPPFLAGS = $(AM_CPPFLAGS) $(COLLECTD_CPPFLAGS)
tests_bench_test_bench_config_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_bench_test_bench_config_LDADD = $(CMOCKA_LIBS)
TESTS += tests/bench/test_bench_config

TESTS += tests/bench/smoke.sh
EXTRA_DIST += tests/bench/smoke.sh tests/bench/sim.sh tests/bench/run.sh tests/bench/plot.gp \
	tests/bench/guest/boot.S tests/bench/guest/guest.c \
	tests/bench/results.json tests/bench/table.txt tests/bench/cycle-time.png

# The full benchmark needs root, libvirtd and QEMU; BENCH_QUICK=1 runs the small version. Not part
# of `make check`: it takes minutes and measures the machine as much as the code.
.PHONY: bench
bench: all tests/bench/plugin_host tests/bench/floor tests/bench/floor_qmp
	abs_top_srcdir='$(abs_top_srcdir)' abs_top_builddir='$(abs_top_builddir)' \
		$(SHELL) $(srcdir)/tests/bench/run.sh
