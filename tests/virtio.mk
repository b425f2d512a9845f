# tests/virtio.mk: unit tests of the device model, the QMP server and balloon-sim.
check_PROGRAMS += tests/test_vb_stats
tests_test_vb_stats_SOURCES = tests/test_vb_stats.c
tests_test_vb_stats_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_vb_stats_LDADD = virtio/libvirtio.la $(CMOCKA_LIBS)
TESTS += tests/test_vb_stats

check_PROGRAMS += tests/test_vb_device tests/test_vb_guest
tests_test_vb_device_SOURCES = tests/test_vb_device.c
tests_test_vb_device_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_vb_device_LDFLAGS = $(AM_LDFLAGS) -Wl,--wrap=vb_guest_on_request
tests_test_vb_device_LDADD = virtio/libvirtio.la $(CMOCKA_LIBS)
tests_test_vb_guest_SOURCES = tests/test_vb_guest.c
tests_test_vb_guest_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_vb_guest_LDADD = virtio/libvirtio.la $(CMOCKA_LIBS)
TESTS += tests/test_vb_device tests/test_vb_guest

# QMP server and balloon-sim
check_PROGRAMS += tests/qmp_replay
tests_qmp_replay_SOURCES = tests/qmp_replay.c tests/tt_time.c tests/tt_time.h
tests_qmp_replay_CFLAGS = $(AM_CFLAGS) $(YAJL_CFLAGS)
tests_qmp_replay_LDADD = $(YAJL_LIBS)
TESTS += tests/qmp_transcript.sh tests/qmp_transcript_qemu.sh
EXTRA_DIST += tests/qmp_transcript.sh tests/qmp_transcript_qemu.sh tests/qmp/qemu.sh tests/qmp/record.sh \
	tests/qmp/balloon0.cmds tests/qmp/balloon0.qemu-7.2.txt tests/qmp/anon.cmds tests/qmp/anon.qemu-7.2.txt
check_PROGRAMS += tests/test_vb_qmp_server tests/test_vb_heap
tests_test_vb_qmp_server_SOURCES = tests/test_vb_qmp_server.c
tests_test_vb_qmp_server_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_vb_qmp_server_LDADD = virtio/libvirtio.la $(CMOCKA_LIBS)
tests_test_vb_heap_SOURCES = tests/test_vb_heap.c
tests_test_vb_heap_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_vb_heap_LDADD = virtio/libvirtio.la $(CMOCKA_LIBS)
TESTS += tests/test_vb_qmp_server tests/test_vb_heap
TESTS += tests/balloon_sim.sh
EXTRA_DIST += tests/balloon_sim.sh
# balloon-sim's instructions per QMP message under callgrind (by hand, not part of check)
EXTRA_DIST += tests/qmp_cost.sh

# the agent's stat names against the device model's, which the fake QEMUs answer with
check_PROGRAMS += tests/test_stat_tables
tests_test_stat_tables_SOURCES = tests/test_stat_tables.c
tests_test_stat_tables_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_stat_tables_LDADD = agent/libagent.la virtio/libvirtio.la $(CMOCKA_LIBS)
TESTS += tests/test_stat_tables
