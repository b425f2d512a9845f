# tests/plugin.mk: the collectd plugin. Unit tests link the plugin's objects against a fake collectd
# core (tests/test_plugin_core.c) and a scripted agent (tests/test_plugin_agent.c, through --wrap);
# the shell tests load the built balloon.so into the real collectd daemon.
PLUGIN_TEST_CPP = $(AM_CPPFLAGS) $(COLLECTD_CPPFLAGS) -DFC_TYPESDB='"$(COLLECTD_TYPESDB)"'
PLUGIN_TEST_LIBS = plugin/libballoonplugin.la agent/libagent.la $(CMOCKA_LIBS) -lm
PLUGIN_TEST_WRAP = -Wl,--wrap=bal_open_agent,--wrap=bal_agent_read,--wrap=bal_agent_free
PLUGIN_TEST_SRC = \
	tests/test_plugin_core.c tests/test_plugin_core.h \
	tests/test_plugin_agent.c tests/test_plugin_agent.h \
	tests/test_plugin_fixture.c tests/test_plugin_fixture.h

check_PROGRAMS += tests/test_plugin_config tests/test_plugin_read tests/test_plugin_fdlimit
tests_test_plugin_fdlimit_SOURCES = tests/test_plugin_fdlimit.c $(PLUGIN_TEST_SRC)
tests_test_plugin_fdlimit_CPPFLAGS = $(PLUGIN_TEST_CPP)
tests_test_plugin_fdlimit_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_plugin_fdlimit_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_TEST_WRAP)
tests_test_plugin_fdlimit_LDADD = $(PLUGIN_TEST_LIBS)
TESTS += tests/test_plugin_fdlimit
tests_test_plugin_config_SOURCES = tests/test_plugin_config.c $(PLUGIN_TEST_SRC)
tests_test_plugin_config_CPPFLAGS = $(PLUGIN_TEST_CPP)
tests_test_plugin_config_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_plugin_config_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_TEST_WRAP)
tests_test_plugin_config_LDADD = $(PLUGIN_TEST_LIBS)
tests_test_plugin_read_SOURCES = tests/test_plugin_read.c $(PLUGIN_TEST_SRC)
tests_test_plugin_read_CPPFLAGS = $(PLUGIN_TEST_CPP)
tests_test_plugin_read_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_plugin_read_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_TEST_WRAP)
tests_test_plugin_read_LDADD = $(PLUGIN_TEST_LIBS)
TESTS += tests/test_plugin_config tests/test_plugin_read

TESTS += tests/test_plugin_exports.sh tests/collectd_sim.sh tests/test_plugin_demo.sh
EXTRA_DIST += tests/test_plugin_exports.sh tests/collectd_sim.sh tests/test_plugin_demo.sh
# issue 11: hostile and unlucky peers, values, names and text (tests/collectd_lib.sh: what these
# collectd tests share; tests/hostile_qmp.py: a scripted QMP peer)
TESTS += tests/collectd_peers.sh tests/collectd_fdlimit.sh tests/collectd_hostile.sh
EXTRA_DIST += tests/collectd_lib.sh tests/collectd_peers.sh tests/collectd_fdlimit.sh \
	tests/collectd_hostile.sh tests/hostile_qmp.py
