# tests/fault.mk: hardening. Fault injection (fault_*), the transport boundary (least privilege), the
# soak (make soak, not part of check), and valgrind over the suite (tests/valgrind.sh).
FAULT_FAKE_SRC = tests/fault_fake.c tests/fault_fake.h tests/tt_manual_clock.c tests/tt_manual_clock.h \
	tests/tt_qemu_reply.c tests/tt_qemu_reply.h
check_PROGRAMS += tests/fault_churn
tests_fault_churn_SOURCES = tests/fault_churn.c tests/tt_time.c tests/tt_time.h $(FAULT_FAKE_SRC)
tests_fault_churn_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(YAJL_CFLAGS)
tests_fault_churn_LDADD = agent/libagent.la virtio/libvirtio.la $(YAJL_LIBS) $(CMOCKA_LIBS)
TESTS += tests/fault_churn

# The soak: a short run in make check, the long one (100000 cycles over 100 guests) with make soak.
check_PROGRAMS += tests/soak
tests_soak_SOURCES = tests/soak.c tests/tt_env.c tests/tt_env.h tests/tt_tally.c tests/tt_tally.h tests/tt_time.c \
	tests/tt_time.h $(FAULT_FAKE_SRC)
tests_soak_CFLAGS = $(AM_CFLAGS) $(YAJL_CFLAGS)
tests_soak_LDADD = agent/libagent.la virtio/libvirtio.la $(YAJL_LIBS)
TESTS += tests/soak
SOAK_CYCLES = 100000
SOAK_GUESTS = 100
soak: tests/soak$(EXEEXT)
	$(builddir)/tests/soak $(SOAK_CYCLES) $(SOAK_GUESTS)
.PHONY: soak

# Least privilege: the transport boundary's refusals, and the agent sending nothing else.
check_PROGRAMS += tests/test_least_privilege
tests_test_least_privilege_SOURCES = tests/test_least_privilege.c tests/tt_fake.c tests/tt_fake.h $(FAULT_FAKE_SRC)
tests_test_least_privilege_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(YAJL_CFLAGS)
tests_test_least_privilege_LDADD = agent/libagent.la virtio/libvirtio.la $(YAJL_LIBS) $(CMOCKA_LIBS)
TESTS += tests/test_least_privilege

# The whole read path over QMP sockets, against a server that fails in the issue's ways.
check_PROGRAMS += tests/fault_qmp
tests_fault_qmp_SOURCES = tests/fault_qmp.c tests/tt_env.c tests/tt_env.h tests/fault_server.c tests/fault_server.h tests/tt_time.c tests/tt_time.h \
	$(FAULT_FAKE_SRC)
tests_fault_qmp_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(YAJL_CFLAGS)
tests_fault_qmp_LDADD = agent/libagent.la virtio/libvirtio.la $(YAJL_LIBS) $(CMOCKA_LIBS)
TESTS += tests/fault_qmp

# libvirt calls failing at random under the libvirt transport (libvirt's API wrapped at link time).
check_PROGRAMS += tests/fault_libvirt
tests_fault_libvirt_SOURCES = tests/fault_libvirt.c tests/tt_env.c tests/tt_env.h tests/tt_tally.c tests/tt_tally.h \
	tests/tt_time.c tests/tt_time.h $(FAULT_FAKE_SRC)
tests_fault_libvirt_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(YAJL_CFLAGS) $(LIBVIRT_CFLAGS) $(LIBVIRT_QEMU_CFLAGS)
# LIBVIRT_FAKE_WRAPS: tests/agent.mk
tests_fault_libvirt_LDFLAGS = $(AM_LDFLAGS) $(LIBVIRT_FAKE_WRAPS)
tests_fault_libvirt_LDADD = agent/libagent.la virtio/libvirtio.la $(LIBVIRT_QEMU_LIBS) $(LIBVIRT_LIBS) \
	$(YAJL_LIBS) $(CMOCKA_LIBS)
TESTS += tests/fault_libvirt

# valgrind over the C tests and balloon-sim / balloonctl (run by scripts/test.sh, not by make check)
EXTRA_DIST += tests/valgrind.sh tests/valgrind.supp

# balloon-sim killed mid-cycle (SIGKILL) and restarted under the agent's cycles
check_PROGRAMS += tests/fault_cycles
tests_fault_cycles_SOURCES = tests/fault_cycles.c tests/tt_env.c tests/tt_env.h tests/tt_time.c tests/tt_time.h
tests_fault_cycles_LDADD = agent/libagent.la $(YAJL_LIBS)
TESTS += tests/fault_sim.sh
EXTRA_DIST += tests/fault_sim.sh
