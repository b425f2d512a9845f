#!/bin/sh
# balloon.so exports module_register and nothing else: none of the agent's or the plugin's own
# functions can clash with collectd's or another plugin's symbols.
set -eu
so="$abs_top_builddir/plugin/.libs/balloon.so"
if [ ! -f "$so" ]; then
    echo "SKIP: $so was not built" >&2
    exit 77
fi
# Function and data symbols only (T, D, B, R...), without the version node libtool's script adds.
exported=$(nm -D --defined-only "$so" | awk '$2 != "A" { print $3 }' | sort)
if [ "$exported" != "module_register" ]; then
    echo "FAIL: balloon.so exports more than module_register:" >&2
    echo "$exported" >&2
    exit 1
fi
# And it does need collectd's API from the daemon, not from a copy of its own.
for sym in plugin_register_complex_read plugin_dispatch_values plugin_dispatch_notification plugin_log; do
    if ! nm -D --undefined-only "$so" | grep -qw "$sym"; then
        echo "FAIL: balloon.so does not import $sym from the daemon." >&2
        exit 1
    fi
done
echo "PASS: balloon.so exports only module_register"
