# virtio/: the device model (libvirtio.la, no dependency on anything of ours) and balloon-sim.
noinst_LTLIBRARIES += virtio/libvirtio.la
virtio_libvirtio_la_CFLAGS = $(AM_CFLAGS) $(YAJL_CFLAGS)
virtio_libvirtio_la_LIBADD = $(YAJL_LIBS)
virtio_libvirtio_la_SOURCES = \
	virtio/vb_stats.c virtio/vb_stats.h \
	virtio/vb_clock.c virtio/vb_clock.h
# device model and guest driver model
virtio_libvirtio_la_SOURCES += virtio/vb_device.c virtio/vb_device.h virtio/vb_guest.c virtio/vb_guest.h
# QMP server
virtio_libvirtio_la_SOURCES += virtio/vb_json.c virtio/vb_json.h virtio/vb_machine.c virtio/vb_machine.h \
	virtio/vb_qmp_server.c virtio/vb_qmp_server.h virtio/vb_heap.c virtio/vb_heap.h \
	virtio/vb_sim.c virtio/vb_sim.h
# balloon-sim: a demo and test tool, installed (Debian: package balloon-sim)
bin_PROGRAMS += virtio/balloon-sim
dist_man_MANS += virtio/balloon-sim.1
virtio_balloon_sim_SOURCES = virtio/balloon_sim.c
virtio_balloon_sim_LDADD = virtio/libvirtio.la $(YAJL_LIBS)
