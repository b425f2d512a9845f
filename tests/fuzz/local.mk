# tests/fuzz/: libFuzzer targets. tests/fuzz/run.sh builds the fuzz_* programs with clang and
# FUZZ_ENGINE=-fsanitize=fuzzer and runs each for a bounded time; make check links the same targets
# with replay.c and runs them over the seed corpus and every kept regression (replay_*).
FUZZ_ENGINE =
FUZZ_PLUGIN_CPP = $(AM_CPPFLAGS) $(COLLECTD_CPPFLAGS)
EXTRA_PROGRAMS = tests/fuzz/fuzz_qmp_reply tests/fuzz/fuzz_allowlist tests/fuzz/fuzz_plugin_config \
	tests/fuzz/fuzz_qmp_server tests/fuzz/fuzz_qmp_stream
CLEANFILES += $(EXTRA_PROGRAMS)
EXTRA_DIST += tests/fuzz/run.sh tests/fuzz/json.dict tests/fuzz/corpus tests/fuzz/regressions

tests_fuzz_fuzz_qmp_reply_SOURCES = tests/fuzz/fuzz_qmp_reply.c tests/fuzz/fuzz.h
tests_fuzz_fuzz_qmp_reply_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_ENGINE)
tests_fuzz_fuzz_qmp_reply_LDADD = agent/libagent.la $(YAJL_LIBS)
tests_fuzz_fuzz_allowlist_SOURCES = tests/fuzz/fuzz_allowlist.c tests/fuzz/fuzz.h tests/tt_fake.c tests/tt_fake.h
tests_fuzz_fuzz_allowlist_CFLAGS = $(AM_CFLAGS) $(YAJL_CFLAGS)
tests_fuzz_fuzz_allowlist_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_ENGINE)
tests_fuzz_fuzz_allowlist_LDADD = agent/libagent.la $(YAJL_LIBS)
tests_fuzz_fuzz_plugin_config_SOURCES = tests/fuzz/fuzz_plugin_config.c tests/fuzz/fuzz.h plugin/bp_config.c \
	tests/test_plugin_core.c tests/test_plugin_core.h
tests_fuzz_fuzz_plugin_config_CPPFLAGS = $(FUZZ_PLUGIN_CPP)
tests_fuzz_fuzz_plugin_config_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_ENGINE)
tests_fuzz_fuzz_plugin_config_LDADD = agent/libagent.la -lm
tests_fuzz_fuzz_qmp_server_SOURCES = tests/fuzz/fuzz_qmp_server.c tests/fuzz/fuzz.h
tests_fuzz_fuzz_qmp_server_CFLAGS = $(AM_CFLAGS) $(YAJL_CFLAGS)
tests_fuzz_fuzz_qmp_server_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_ENGINE)
tests_fuzz_fuzz_qmp_server_LDADD = virtio/libvirtio.la $(YAJL_LIBS)
tests_fuzz_fuzz_qmp_stream_SOURCES = tests/fuzz/fuzz_qmp_stream.c tests/fuzz/fuzz.h
tests_fuzz_fuzz_qmp_stream_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_ENGINE)
tests_fuzz_fuzz_qmp_stream_LDADD = agent/libagent.la $(YAJL_LIBS)

check_PROGRAMS += tests/fuzz/replay_qmp_reply tests/fuzz/replay_allowlist tests/fuzz/replay_plugin_config \
	tests/fuzz/replay_qmp_server tests/fuzz/replay_qmp_stream
tests_fuzz_replay_qmp_reply_SOURCES = tests/fuzz/fuzz_qmp_reply.c tests/fuzz/replay.c tests/fuzz/fuzz.h
tests_fuzz_replay_qmp_reply_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME='"qmp_reply"'
tests_fuzz_replay_qmp_reply_LDADD = agent/libagent.la $(YAJL_LIBS)
tests_fuzz_replay_allowlist_SOURCES = tests/fuzz/fuzz_allowlist.c tests/fuzz/replay.c tests/fuzz/fuzz.h tests/tt_fake.c \
	tests/tt_fake.h
tests_fuzz_replay_allowlist_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME='"allowlist"'
tests_fuzz_replay_allowlist_CFLAGS = $(AM_CFLAGS) $(YAJL_CFLAGS)
tests_fuzz_replay_allowlist_LDADD = agent/libagent.la $(YAJL_LIBS)
tests_fuzz_replay_plugin_config_SOURCES = tests/fuzz/fuzz_plugin_config.c tests/fuzz/replay.c tests/fuzz/fuzz.h \
	plugin/bp_config.c tests/test_plugin_core.c tests/test_plugin_core.h
tests_fuzz_replay_plugin_config_CPPFLAGS = $(FUZZ_PLUGIN_CPP) -DFUZZ_NAME='"plugin_config"'
tests_fuzz_replay_plugin_config_LDADD = agent/libagent.la -lm
tests_fuzz_replay_qmp_server_SOURCES = tests/fuzz/fuzz_qmp_server.c tests/fuzz/replay.c tests/fuzz/fuzz.h
tests_fuzz_replay_qmp_server_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME='"qmp_server"'
tests_fuzz_replay_qmp_server_CFLAGS = $(AM_CFLAGS) $(YAJL_CFLAGS)
tests_fuzz_replay_qmp_server_LDADD = virtio/libvirtio.la $(YAJL_LIBS)
tests_fuzz_replay_qmp_stream_SOURCES = tests/fuzz/fuzz_qmp_stream.c tests/fuzz/replay.c tests/fuzz/fuzz.h
tests_fuzz_replay_qmp_stream_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME='"qmp_stream"'
tests_fuzz_replay_qmp_stream_LDADD = agent/libagent.la $(YAJL_LIBS)
TESTS += tests/fuzz/replay_qmp_reply tests/fuzz/replay_allowlist tests/fuzz/replay_plugin_config \
	tests/fuzz/replay_qmp_server tests/fuzz/replay_qmp_stream
