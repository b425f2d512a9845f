# tests/agent.mk
# QMP messages, the transport dispatcher and the QMP socket transport
check_PROGRAMS += tests/test_bal_qmp
tests_test_bal_qmp_SOURCES = tests/test_bal_qmp.c
tests_test_bal_qmp_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(YAJL_CFLAGS)
tests_test_bal_qmp_LDADD = agent/libagent.la $(YAJL_LIBS) $(CMOCKA_LIBS)
TESTS += tests/test_bal_qmp
# Domains, pool, polling state machine, agent core
check_PROGRAMS += tests/test_bal_filter tests/test_bal_pool tests/test_bal_poller
tests_test_bal_filter_SOURCES = tests/test_bal_filter.c
tests_test_bal_filter_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_bal_filter_LDADD = agent/libagent.la $(CMOCKA_LIBS)
tests_test_bal_pool_SOURCES = tests/test_bal_pool.c
tests_test_bal_pool_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_bal_pool_LDADD = agent/libagent.la $(CMOCKA_LIBS)
tests_test_bal_poller_SOURCES = tests/test_bal_poller.c
tests_test_bal_poller_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_bal_poller_LDADD = agent/libagent.la $(CMOCKA_LIBS)
TESTS += tests/test_bal_filter tests/test_bal_pool tests/test_bal_poller
