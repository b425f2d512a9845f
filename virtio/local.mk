# virtio/: the device model (libvirtio.la, no dependency on anything of ours) and balloon-sim.
noinst_LTLIBRARIES += virtio/libvirtio.la
virtio_libvirtio_la_SOURCES = \
	virtio/vb_stats.c virtio/vb_stats.h \
	virtio/vb_clock.c virtio/vb_clock.h
# device model and guest driver model
virtio_libvirtio_la_SOURCES += virtio/vb_device.c virtio/vb_device.h virtio/vb_guest.c virtio/vb_guest.h
# QEMU's JSON: the value tree, its orders, modified UTF-8, the printer, and the lexer, parser and
# streamer that read a stream into trees
virtio_libvirtio_la_SOURCES += virtio/vb_buf.c virtio/vb_buf.h virtio/vb_hash.h virtio/vb_qobj.c virtio/vb_qobj.h \
	virtio/vb_order.c virtio/vb_order.h virtio/vb_mutf8.c virtio/vb_mutf8.h \
	virtio/vb_json_print.c virtio/vb_json_print.h virtio/vb_json_lexer.c virtio/vb_json_lexer.h \
	virtio/vb_json_parser.c virtio/vb_json_parser.h virtio/vb_json_stream.c virtio/vb_json_stream.h
# QMP server
virtio_libvirtio_la_SOURCES += virtio/vb_machine.c virtio/vb_machine.h \
	virtio/vb_qmp_server.c virtio/vb_qmp_server.h virtio/vb_heap.c virtio/vb_heap.h \
	virtio/vb_sim.c virtio/vb_sim.h
# balloon-sim: a test and demo tool, not installed
noinst_PROGRAMS += virtio/balloon-sim
virtio_balloon_sim_SOURCES = virtio/balloon_sim.c
virtio_balloon_sim_LDADD = virtio/libvirtio.la
