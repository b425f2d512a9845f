# tests/: one fragment per area, each owned by the work on that area.
TEST_EXTENSIONS = .sh
SH_LOG_COMPILER = $(SHELL)
AM_TESTS_ENVIRONMENT = \
	abs_top_srcdir='$(abs_top_srcdir)'; export abs_top_srcdir; \
	abs_top_builddir='$(abs_top_builddir)'; export abs_top_builddir;

include tests/virtio.mk
include tests/agent.mk
include tests/plugin.mk
include tests/e2e.mk
include tests/deb/local.mk
include tests/fleet.mk
include tests/bench.mk
include tests/fuzz/local.mk
include tests/fault.mk
include tests/dashboards/local.mk
