# tests/e2e.mk: the end-to-end tests on the real stack (libvirtd, QEMU, Linux guests, collectd with the
# plugin): tests/e2e/run.sh on the system's libvirt 9.0 / QEMU 7.2, tests/e2e/modern.sh on libvirt 11.3 /
# QEMU 10.0 / Linux 6.12 from bookworm-backports (in a root built once per machine under /var/cache),
# tests/e2e/modern-qmp.sh on QEMU 10.0 over QMP sockets, and tests/e2e/downloads.sh (a failed download
# of that stack stops with a message naming it). Root only; skipped (77) otherwise and under
# BALLOON_SKIP_SLOW=1.
TESTS += tests/e2e/run.sh tests/e2e/downloads.sh tests/e2e/modern.sh tests/e2e/modern-qmp.sh
EXTRA_DIST += \
	tests/e2e/run.sh \
	tests/e2e/lib.sh \
	tests/e2e/fetch-kernel.sh \
	tests/e2e/mkinitramfs.sh \
	tests/e2e/guest-init.sh \
	tests/e2e/domain.xml.in \
	tests/e2e/collectd.conf.in \
	tests/e2e/modern.sh \
	tests/e2e/modern-lib.sh \
	tests/e2e/modern-root.sh \
	tests/e2e/modern-qmp.sh \
	tests/e2e/collectd-qmp.conf.in \
	tests/e2e/downloads.sh
