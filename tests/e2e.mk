# tests/e2e.mk: the end-to-end test on the real stack (libvirtd, QEMU, Linux guests, collectd with the
# plugin): tests/e2e/run.sh. Root only; skipped (77) otherwise and under BALLOON_SKIP_SLOW=1.
TESTS += tests/e2e/run.sh
EXTRA_DIST += \
	tests/e2e/run.sh \
	tests/e2e/lib.sh \
	tests/e2e/fetch-kernel.sh \
	tests/e2e/mkinitramfs.sh \
	tests/e2e/guest-init.sh \
	tests/e2e/domain.xml.in \
	tests/e2e/collectd.conf.in
