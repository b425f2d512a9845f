# tests/fleet/conf.sh: the fleet test's and benchmark's configurations, made from the examples of
# dashboards/fleet/ (sourced, POSIX sh). Only the example's names, addresses, passwords, paths and
# intervals are replaced; everything else (security levels, the flush, the chain that names a
# value's host after its sender, write_prometheus) is used as the README shows it.
#
# The caller sets FLEET_SRC (the checkout) and FLEET_WORK.

FLEET_EXAMPLES=${FLEET_SRC:?}/dashboards/fleet

# The global options a collectd run here needs on top of an example: its own files, our plugin.
fleet_conf_globals() { # NAME PLUGINDIR
    cat <<EOF
# Made by tests/fleet from $FLEET_EXAMPLES.
BaseDir "$FLEET_WORK"
PIDFile "$FLEET_WORK/$1.collectd.pid"
PluginDir "$2"
TypesDB "/usr/share/collectd/types.db"
EOF
}

# fleet_conf_hypervisor NAME USER PASSWORD LEVEL CENTRAL_ADDR INTERVAL PLUGINDIR BALLOON_OPTIONS
# writes FLEET_WORK/NAME.conf from hypervisor.conf: Hostname NAME, Username USER, SecurityLevel
# LEVEL (Encrypt, Sign or None: None without user and password), the balloon block's Connection
# replaced by BALLOON_OPTIONS (lines; e.g. QMPSocketDir).
fleet_conf_hypervisor() {
    _name=$1 _user=$2 _pw=$3 _level=$4 _central=$5 _interval=$6 _plugins=$7 _balloon=$8
    {
        fleet_conf_globals "$_name" "$_plugins"
        # the balloon block's options, one line each, in place of the example's Connection line
        printf '%s\n' "$_balloon" | sed 's/^/  /' >"$FLEET_WORK/$_name.balloon"
        sed -e "s|^Hostname \"hv1.example.net\"|Hostname \"$_name\"|" \
            -e "s|Username \"hv1.example.net\"|Username \"$_user\"|" \
            -e "s|\"change-me-hv1\"|\"$_pw\"|" \
            -e "s|\"central.example.net\"|\"$_central\"|" \
            -e "s|^Interval 10\$|Interval $_interval|" \
            -e "s|\"/var/log/collectd.log\"|\"$FLEET_WORK/$_name.log\"|" \
            -e "s|SecurityLevel Encrypt|SecurityLevel $_level|" \
            -e "/^  Connection \"qemu:\/\/\/system\"\$/{
r $FLEET_WORK/$_name.balloon
d
}" "$FLEET_EXAMPLES/hypervisor.conf"
    } >"$FLEET_WORK/$_name.conf"
    if [ "$_level" = None ]; then
        sed -i -e '/^    Username /d' -e '/^    Password /d' "$FLEET_WORK/$_name.conf"
    fi
    fleet_conf_expect "$FLEET_WORK/$_name.conf" "Hostname \"$_name\"" "Interval $_interval" \
        "SecurityLevel $_level" "<Server \"$_central\" \"25826\">" "File \"$FLEET_WORK/$_name.log\""
}

# fleet_conf_central ADDR AUTHFILE INTERVAL: FLEET_WORK/central.conf from central.conf, listening
# (network and write_prometheus) on ADDR.
fleet_conf_central() {
    {
        fleet_conf_globals central /usr/lib/collectd
        sed -e "s|\"central.example.net\"|\"$1\"|" \
            -e "s|^Hostname \"$1\"|Hostname \"central\"|" \
            -e "s|\"/etc/collectd/passwd\"|\"$2\"|" \
            -e "s|^Interval 10\$|Interval $3|" \
            -e "s|\"/var/log/collectd.log\"|\"$FLEET_WORK/central.log\"|" \
            "$FLEET_EXAMPLES/central.conf"
    } >"$FLEET_WORK/central.conf"
    fleet_conf_expect "$FLEET_WORK/central.conf" "<Listen \"$1\" \"25826\">" "AuthFile \"$2\"" \
        "Interval $3" "Host \"$1\"" "File \"$FLEET_WORK/central.log\""
}

# fleet_conf_prometheus TARGET RULES SCRAPE_INTERVAL: FLEET_WORK/prometheus.yml from prometheus.yml
# (scrape and rule evaluation every SCRAPE_INTERVAL).
fleet_conf_prometheus() {
    sed -e "s|'central.example.net:9103'|'$1'|" \
        -e "s|/usr/local/share/collectd-balloon/prometheus/collectd-balloon.rules.yml|$2|" \
        -e "s|^  scrape_interval: 5s\$|  scrape_interval: $3|" \
        -e "s|^  evaluation_interval: 5s\$|  evaluation_interval: $3|" \
        "$FLEET_EXAMPLES/prometheus.yml" >"$FLEET_WORK/prometheus.yml"
    fleet_conf_expect "$FLEET_WORK/prometheus.yml" "'$1'" "- $2" "scrape_interval: $3" \
        "evaluation_interval: $3" "honor_labels: true"
}

# An example that changed so that a replacement no longer applies must fail here, not later.
fleet_conf_expect() {
    _f=$1
    shift
    for _line in "$@"; do
        grep -qF -- "$_line" "$_f" || fleet_fail "$_f lacks '$_line': does the example still match tests/fleet/conf.sh?"
    done
}
