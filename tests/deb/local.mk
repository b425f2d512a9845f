# tests/deb/local.mk: the Debian packages, built from a clean copy of the tree, checked with lintian,
# installed with apt into a fresh Debian 12 root and used there (tests/deb/run.sh). Root only; skipped
# (77) otherwise and under BALLOON_SKIP_SLOW=1.
TESTS += tests/deb/run.sh
EXTRA_DIST += \
	tests/deb/run.sh \
	tests/deb/root.sh \
	tests/deb/inside.sh
