#!/bin/sh
# tests/deb/run.sh: the Debian packages (issue 15), built and used as a user would. From a clean copy
# of the tree (the files git knows, as they are in the working tree: no build directories, nothing
# generated), it builds the source package and, with `dpkg-buildpackage -us -uc -b`, collectd-balloon
# and balloon-sim; checks them with lintian (no error, no warning); then installs them with apt into a
# fresh Debian 12 root and runs them there (tests/deb/inside.sh): Debian's collectd with the packaged
# plugin reads the packaged balloon-sim, and `apt purge` must leave the root as it was.
#
# Needs root (debootstrap, chroot, namespaces) and the network (Debian's mirror): otherwise, and under
# BALLOON_SKIP_SLOW=1 (the sanitizer pass of scripts/test.sh), it is skipped (exit 77). The root is
# made once per machine under DEB_TEST_CACHE (default /var/cache/collectd-balloon-deb; tests/deb/root.sh)
# and copied for each run, so that it stays as debootstrap made it. One run at a time per machine
# (/run/lock/collectd-balloon-deb.lock). DEB_KEEP=1 keeps the work directory (the packages, the logs,
# the root's copy) after a successful run too; after a failure the work directory is kept without the
# root's copy (unless DEB_KEEP=1).
set -u

srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
cache=${DEB_TEST_CACHE:-/var/cache/collectd-balloon-deb}

log() { echo "deb: $*" >&2; }
skip() {
    echo "deb: skipped: $*"
    exit 77
}
fail() {
    echo "deb: FAIL: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || skip "needs root for debootstrap and chroot (CI runs it as root)."
[ "${BALLOON_SKIP_SLOW:-0}" = 1 ] && skip "BALLOON_SKIP_SLOW=1 (it runs in the plain pass)."
git -C "$srcdir" rev-parse --git-dir >/dev/null 2>&1 ||
    skip "'$srcdir' is not a git checkout: the clean copy is made of the files git knows."

"$srcdir/scripts/install-deps.sh" >&2 || fail "scripts/install-deps.sh failed."

mkdir -p /run/lock
exec 9>/run/lock/collectd-balloon-deb.lock
flock -w 1200 9 || fail "another run has held /run/lock/collectd-balloon-deb.lock for 20 minutes."

work=$(mktemp -d /tmp/deb-run.XXXXXX) || fail "mktemp failed."
status=1
cleanup() {
    trap - EXIT INT TERM HUP
    if [ "${DEB_KEEP:-0}" = 1 ]; then
        echo "deb: work directory kept: $work" >&2
    elif [ "$status" = 0 ]; then
        rm -rf "$work"
    else
        rm -rf "$work/root"
        echo "deb: work directory kept (without the root's copy): $work" >&2
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - t0 )) s"; }

# --- the clean copy ----------------------------------------------------------------------------------
# Tracked and new files as they are now (a change is tested before it is committed), without what git
# ignores (build/, configure, ...). A tracked file deleted in the working tree is left out.
mkdir "$work/src"
git -C "$srcdir" ls-files -z --cached --others --exclude-standard |
    tar -C "$srcdir" --null --no-recursion --ignore-failed-read -T - -cf - 2>/dev/null |
    tar -C "$work/src" -xf - || fail "could not copy the tree."
[ -f "$work/src/debian/control" ] || fail "the copy of the tree has no debian/control."
[ ! -e "$work/src/build" ] && [ ! -e "$work/src/configure" ] || fail "the copy of the tree holds generated files."

deb_version=$(dpkg-parsechangelog -l "$work/src/debian/changelog" -S Version)
ac_version=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' "$work/src/configure.ac")
[ "$deb_version" = "$ac_version" ] ||
    fail "debian/changelog's version '$deb_version' is not configure.ac's '$ac_version': add a changelog entry (dch -v '$ac_version')."

# The example configuration shows every option of collectd-balloon(5) (each .TP entry of OPTIONS).
options=$(awk '/^\.SH OPTIONS/ { on = 1; next } /^\.SH/ { on = 0 }
    on && prev == ".TP" && /^\.B[IR]? "/ { sub(/^\.B[IR]? "/, ""); sub(/[ \\].*/, ""); print } { prev = $0 }' \
    "$work/src/plugin/collectd-balloon.5" | sort -u)
[ -n "$options" ] || fail "no option found in plugin/collectd-balloon.5's OPTIONS."
for o in $options; do
    grep -q "^#[[:space:]]*$o " "$work/src/debian/balloon.conf" ||
        fail "debian/balloon.conf does not show the option '$o' of collectd-balloon(5)."
done

# --- build -------------------------------------------------------------------------------------------
# A clean environment: nothing of make check's (MAKEFLAGS and its jobserver, abs_top_srcdir, ...).
# nocheck: this make check is the tests' run on this tree; a second one inside the package build
# would run beside it (tests/test_plugin_demo.sh counts /tmp/balloon-demo.*, ...).
clean_env() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work" LANG=C.UTF-8 DEB_BUILD_OPTIONS=nocheck "$@"
}
(cd "$work" && clean_env timeout -k 10 600 dpkg-source -b src) >"$work/source.log" 2>&1 ||
    fail "dpkg-source -b failed: $(tail -n 5 "$work/source.log")"
(cd "$work/src" && clean_env timeout -k 10 900 dpkg-buildpackage -us -uc -b -J"$(nproc)") \
    >"$work/build.log" 2>&1 || fail "dpkg-buildpackage -us -uc -b failed: $(tail -n 20 "$work/build.log")"
collectd_deb=$work/collectd-balloon_${deb_version}_$(dpkg --print-architecture).deb
sim_deb=$work/balloon-sim_${deb_version}_$(dpkg --print-architecture).deb
[ -f "$collectd_deb" ] && [ -f "$sim_deb" ] || fail "dpkg-buildpackage made no $collectd_deb and $sim_deb."
log "packages built after $(elapsed)"

# lintian on the source package and on every binary package (the -dbgsym ones too): no error, no
# warning. Its own output on failure, every tag with its explanation.
if ! lintian --fail-on error,warning -i -I --pedantic "$work"/collectd-balloon_"$deb_version".dsc \
        "$work"/collectd-balloon_"${deb_version}"_*.changes >"$work/lintian.log" 2>&1; then
    fail "lintian: $(grep -E '^[EW]: ' "$work/lintian.log")"
fi
log "lintian: no error, no warning ($(grep -c '^[IPX]: ' "$work/lintian.log") info, pedantic or experimental tags)"

# Whatever `make install` put under /usr/share/collectd-balloon (the dashboards, rules, consoles) is in
# collectd-balloon; when the tree has dashboards/, something must be there.
(cd "$work/src/debian/tmp" && find usr/share/collectd-balloon -type f 2>/dev/null | sort) >"$work/share.expected"
if [ -d "$work/src/dashboards" ] && [ ! -s "$work/share.expected" ]; then
    fail "the tree has dashboards/, but make install put nothing under /usr/share/collectd-balloon."
fi
dpkg-deb -c "$collectd_deb" | awk '{ print $6 }' | sed 's|^\./||' | sort >"$work/collectd-balloon.contents"
missing=$(comm -23 "$work/share.expected" "$work/collectd-balloon.contents")
[ -z "$missing" ] || fail "collectd-balloon lacks what make install put under /usr/share/collectd-balloon: $missing"

# --- the fresh root ----------------------------------------------------------------------------------
cached_root=$("$srcdir/tests/deb/root.sh" "$cache") || fail "could not make the Debian 12 root."
log "the cached Debian 12 root is ready after $(elapsed)"
root=$work/root
cp -a "$cached_root" "$root" || fail "could not copy the root '$cached_root'."
cp /etc/resolv.conf "$root/etc/resolv.conf" || fail "could not give the root /etc/resolv.conf."
mkdir -p "$root/tmp/deb-test/debs"
cp "$collectd_deb" "$sim_deb" "$root/tmp/deb-test/debs/"
cp "$srcdir/tests/deb/inside.sh" "$work/share.expected" "$root/tmp/deb-test/"

# In a mount and PID namespace of their own: proc is mounted for them only, and whatever they start
# (collectd, balloon-sim, apt's children) dies with the namespace's first process, on every path.
timeout -k 10 900 unshare --mount --propagation private --pid --fork --kill-child \
    --mount-proc="$root/proc" \
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    /bin/sh /tmp/deb-test/inside.sh
inside=$?
# The logs of the run in the root, kept with the work directory.
cp -r "$root/tmp/deb-test" "$work/inside" 2>/dev/null
rm -rf "$work/inside/debs"
if [ "$inside" != 0 ]; then
    for f in apt.log collectd.log sim.out; do
        [ -s "$work/inside/$f" ] && { echo "---- $f (the end)" >&2; tail -n 30 "$work/inside/$f" >&2; }
    done
    fail "the run in the root failed (status $inside); its files: $work/inside"
fi
status=0
log "passed in $(elapsed)"
