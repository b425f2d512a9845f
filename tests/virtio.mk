# tests/virtio.mk: unit tests of the device model, the QMP server and balloon-sim.
check_PROGRAMS += tests/test_vb_stats
tests_test_vb_stats_SOURCES = tests/test_vb_stats.c
tests_test_vb_stats_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_vb_stats_LDADD = virtio/libvirtio.la $(CMOCKA_LIBS)
TESTS += tests/test_vb_stats
