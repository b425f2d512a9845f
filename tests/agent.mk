# tests/agent.mk
# QMP messages, the transport dispatcher and the QMP socket transport
check_PROGRAMS += tests/test_bal_qmp
tests_test_bal_qmp_SOURCES = tests/test_bal_qmp.c
tests_test_bal_qmp_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(YAJL_CFLAGS)
tests_test_bal_qmp_LDADD = agent/libagent.la $(YAJL_LIBS) $(CMOCKA_LIBS)
TESTS += tests/test_bal_qmp
