# tests/agent.mk
# QMP messages, the transport dispatcher and the QMP socket transport
check_PROGRAMS += tests/test_bal_qmp
tests_test_bal_qmp_SOURCES = tests/test_bal_qmp.c
tests_test_bal_qmp_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(YAJL_CFLAGS)
# virtio/: the stat names of the device model, the oracle the parser is checked against
tests_test_bal_qmp_LDADD = agent/libagent.la virtio/libvirtio.la $(YAJL_LIBS) $(CMOCKA_LIBS)
TESTS += tests/test_bal_qmp
check_PROGRAMS += tests/test_bal_transport tests/test_bal_qmp_socket
tests_test_bal_transport_SOURCES = tests/test_bal_transport.c tests/tt_fake.c tests/tt_fake.h
tests_test_bal_transport_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(YAJL_CFLAGS)
tests_test_bal_transport_LDADD = agent/libagent.la $(YAJL_LIBS) $(CMOCKA_LIBS)
tests_test_bal_qmp_socket_SOURCES = tests/test_bal_qmp_socket.c tests/tt_time.c tests/tt_time.h
tests_test_bal_qmp_socket_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(YAJL_CFLAGS)
tests_test_bal_qmp_socket_LDADD = agent/libagent.la $(YAJL_LIBS) $(CMOCKA_LIBS)
TESTS += tests/test_bal_transport tests/test_bal_qmp_socket
check_PROGRAMS += tests/test_qmp_socket_sim
tests_test_qmp_socket_sim_SOURCES = tests/test_qmp_socket_sim.c tests/tt_env.c tests/tt_env.h tests/tt_spawn.c \
	tests/tt_spawn.h tests/tt_time.c tests/tt_time.h
tests_test_qmp_socket_sim_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(YAJL_CFLAGS)
tests_test_qmp_socket_sim_LDADD = agent/libagent.la $(YAJL_LIBS) $(CMOCKA_LIBS)
TESTS += tests/test_qmp_socket_sim
# Domains, pool, polling state machine, agent core
check_PROGRAMS += tests/test_bal_filter tests/test_bal_pool tests/test_bal_jobs tests/test_bal_poller
tests_test_bal_filter_SOURCES = tests/test_bal_filter.c tests/tt_env.c tests/tt_env.h
tests_test_bal_filter_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_bal_filter_LDFLAGS = $(AM_LDFLAGS) -Wl,--wrap=regcomp
tests_test_bal_filter_LDADD = agent/libagent.la $(CMOCKA_LIBS)
tests_test_bal_pool_SOURCES = tests/test_bal_pool.c tests/tt_time.c tests/tt_time.h
tests_test_bal_pool_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_bal_pool_LDADD = agent/libagent.la $(CMOCKA_LIBS)
tests_test_bal_jobs_SOURCES = tests/test_bal_jobs.c tests/tt_env.c tests/tt_env.h tests/tt_time.c tests/tt_time.h
tests_test_bal_jobs_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_bal_jobs_LDADD = agent/libagent.la $(CMOCKA_LIBS)
tests_test_bal_poller_SOURCES = tests/test_bal_poller.c
tests_test_bal_poller_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_bal_poller_LDADD = agent/libagent.la $(CMOCKA_LIBS)
TESTS += tests/test_bal_filter tests/test_bal_pool tests/test_bal_jobs tests/test_bal_poller
# Text from outside, cleaned; many domains summarised
check_PROGRAMS += tests/test_bal_text
tests_test_bal_text_SOURCES = tests/test_bal_text.c
tests_test_bal_text_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_bal_text_LDADD = agent/libagent.la $(CMOCKA_LIBS)
TESTS += tests/test_bal_text
# The limits of what an operator gives, and the documentation's ranges against them
check_PROGRAMS += tests/test_limits
tests_test_limits_SOURCES = tests/test_limits.c
tests_test_limits_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_limits_LDADD = agent/libagent.la $(CMOCKA_LIBS) -lm
TESTS += tests/test_limits
# libvirt transport: libvirt's connection and domain API mocked at link time, the device model behind it
check_PROGRAMS += tests/test_bal_libvirt
tests_test_bal_libvirt_SOURCES = tests/test_bal_libvirt.c tests/tt_env.c tests/tt_env.h
tests_test_bal_libvirt_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(YAJL_CFLAGS) $(LIBVIRT_CFLAGS) $(LIBVIRT_QEMU_CFLAGS)
# The part of libvirt's API that the transport uses, replaced at link time by a test's fake of it
# (test_bal_libvirt here, fault_libvirt in tests/fault.mk).
LIBVIRT_FAKE_WRAPS = \
	-Wl,--wrap=virConnectOpen,--wrap=virConnectClose,--wrap=virConnectRef,--wrap=virConnectIsAlive \
	-Wl,--wrap=virConnectSetKeepAlive,--wrap=virConnectRegisterCloseCallback \
	-Wl,--wrap=virConnectUnregisterCloseCallback,--wrap=virConnectDomainEventRegisterAny \
	-Wl,--wrap=virConnectDomainEventDeregisterAny,--wrap=virConnectListAllDomains \
	-Wl,--wrap=virDomainLookupByUUIDString,--wrap=virDomainLookupByName,--wrap=virDomainRef \
	-Wl,--wrap=virDomainFree,--wrap=virDomainGetName,--wrap=virDomainGetUUIDString,--wrap=virDomainGetID \
	-Wl,--wrap=virDomainQemuMonitorCommand,--wrap=virGetLastError,--wrap=virResetLastError
tests_test_bal_libvirt_LDFLAGS = $(AM_LDFLAGS) $(LIBVIRT_FAKE_WRAPS) -Wl,--wrap=virEventRunDefaultImpl \
	-Wl,--wrap=pthread_create,--wrap=pthread_join
tests_test_bal_libvirt_LDADD = agent/libagent.la virtio/libvirtio.la $(LIBVIRT_QEMU_LIBS) $(LIBVIRT_LIBS) \
	$(YAJL_LIBS) $(CMOCKA_LIBS)
TESTS += tests/test_bal_libvirt
check_PROGRAMS += tests/test_bal_agent
tests_test_bal_agent_SOURCES = tests/test_bal_agent.c tests/tt_env.c tests/tt_env.h tests/tt_fake.c tests/tt_fake.h tests/tt_manual_clock.c \
	tests/tt_manual_clock.h tests/tt_qemu_reply.c tests/tt_qemu_reply.h tests/tt_time.c tests/tt_time.h
tests_test_bal_agent_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(YAJL_CFLAGS)
tests_test_bal_agent_LDADD = agent/libagent.la virtio/libvirtio.la $(YAJL_LIBS) $(CMOCKA_LIBS)
TESTS += tests/test_bal_agent
# the transport and the agent's selection with thousands of domains (balloon-sim)
check_PROGRAMS += tests/test_bal_scale
tests_test_bal_scale_SOURCES = tests/test_bal_scale.c tests/tt_env.c tests/tt_env.h tests/tt_fake.c tests/tt_fake.h \
	tests/tt_spawn.c tests/tt_spawn.h tests/tt_time.c tests/tt_time.h
tests_test_bal_scale_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(YAJL_CFLAGS)
tests_test_bal_scale_LDADD = agent/libagent.la $(YAJL_LIBS) $(CMOCKA_LIBS)
TESTS += tests/test_bal_scale
check_PROGRAMS += tests/test_bal_qmp_framing
tests_test_bal_qmp_framing_SOURCES = tests/test_bal_qmp_framing.c
tests_test_bal_qmp_framing_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(YAJL_CFLAGS)
tests_test_bal_qmp_framing_LDADD = agent/libagent.la $(YAJL_LIBS) $(CMOCKA_LIBS)
TESTS += tests/test_bal_qmp_framing
# balloonctl against balloon-sim
TESTS += tests/balloonctl.sh
EXTRA_DIST += tests/balloonctl.sh
