/* The ranges and defaults of every number an operator gives the agent (through the collectd plugin's options or
 * balloonctl's), in one place: the agent enforces them, the plugin's configuration and balloonctl
 * check them before an agent is made so that a mistake is named where it was written, and
 * collectd-balloon(5) and the README state them (tests/test_limits.c compares the man page with
 * these). Also the one rule by which balloonctl reads a number from text. Plain macros and C only:
 * collectd's headers and ours include this alike. */
#ifndef BAL_LIMITS_H
#define BAL_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

/* guest-stats-polling-interval, in seconds: QEMU answers "timer value is too big" above. The plugin's
 * PollingInterval starts at 1 (0 would turn polling off); balloonctl set-interval takes 0. */
#define BAL_LIMIT_POLLING_INTERVAL_MIN 1
#define BAL_LIMIT_POLLING_INTERVAL_MAX INT64_C(4294967295)
/* QMP commands in flight at once: threads of the agent's pool. */
#define BAL_LIMIT_CONCURRENCY_MIN 1
#define BAL_LIMIT_CONCURRENCY_MAX 256
#define BAL_LIMIT_CONCURRENCY_DEFAULT 5 /* libvirtd's max_client_requests */
/* Seconds between two readings of the domain list. */
#define BAL_LIMIT_REFRESH_INTERVAL_MIN 1
#define BAL_LIMIT_REFRESH_INTERVAL_MAX 86400
#define BAL_LIMIT_REFRESH_INTERVAL_DEFAULT 60 /* lifecycle events act at once anyway */
/* Polling intervals without a new last-update before a domain is stale. */
#define BAL_LIMIT_STALE_AFTER_MIN 1
#define BAL_LIMIT_STALE_AFTER_MAX 1000000
#define BAL_LIMIT_STALE_AFTER_DEFAULT 3
/* Read cycles between two checks (qom-get) that the interval is still the one set. Not an option. */
#define BAL_LIMIT_VERIFY_EVERY_DEFAULT 5
/* Milliseconds a connection or a reply may take (balloonctl --timeout). */
#define BAL_LIMIT_TIMEOUT_MS_MIN 1
#define BAL_LIMIT_TIMEOUT_MS_MAX 600000
#define BAL_LIMIT_TIMEOUT_MS_DEFAULT 5000
/* Bytes of a QOM path (QOMPath, --qom-path). */
#define BAL_LIMIT_QOM_PATH_MAX 1024
/* A Domain regular expression may stand for at most this many copies of its parts once its bounded
 * repetitions are multiplied out (bal_regex.h). At this bound the worst patterns found compile in
 * 30 ms and 6 MiB with glibc and match a 250-byte name in 0.3 ms; a{0,32767} takes half a minute and
 * 8 GiB. A UUID's pattern weighs 36. */
#define BAL_LIMIT_REGEX_WEIGHT 256
/* What the anchors of a Domain regular expression may reach without matching a character: the nodes
 * of such a stretch times the anchors in it (bal_regex.h). Under this bound, none of some 120000
 * random patterns accepted took glibc 0.05 s; "\b(a?){1,120}", at 361, took 0.3 s, and
 * "\b(a?){1,120}(a?){1,120}" 0.9 GiB. */
#define BAL_LIMIT_REGEX_ANCHOR_REACH 128
/* Groups nested in a Domain regular expression. */
#define BAL_LIMIT_REGEX_DEPTH 32

/* Reads text as a whole number from min to max. The rule, for every number balloonctl reads: one or
 * more ASCII decimal digits and nothing else, so no sign, no blank before or after, no "0x"; leading
 * zeros are fine. Returns true with the number in *out, else false with *out untouched. */
bool bal_limits_parse_number(const char *text, uint64_t min, uint64_t max, uint64_t *out);

#endif
