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
virtio_libvirtio_la_SOURCES +=
