/* agent/bal_limits: the one rule for numbers read from text, and the ranges the documentation
 * states against the ones the agent, the plugin and balloonctl enforce: collectd-balloon(5) for each
 * numeric option, the README for balloonctl's --timeout. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/bal_limits.h"

static void test_numbers_are_digits_only(void **state)
{
    static const char *const refused[] = {"", " 5", "5 ", "+5", "-5", "-0", "5x", "0x10", "1e3", "5.0",
                                          "\t5", "5\n", "18446744073709551616", "99999999999999999999"};
    uint64_t v = 77;
    (void)state;
    assert_true(bal_limits_parse_number("5", 1, 10, &v));
    assert_true(v == 5);
    assert_true(bal_limits_parse_number("0", 0, 10, &v));
    assert_true(v == 0);
    assert_true(bal_limits_parse_number("007", 0, 10, &v));
    assert_true(v == 7);
    assert_true(bal_limits_parse_number("18446744073709551615", 0, UINT64_MAX, &v));
    assert_true(v == UINT64_MAX);
    assert_true(bal_limits_parse_number("4294967295", 0, (uint64_t)BAL_LIMIT_POLLING_INTERVAL_MAX, &v));
    assert_false(bal_limits_parse_number("4294967296", 0, (uint64_t)BAL_LIMIT_POLLING_INTERVAL_MAX, &v));
    assert_false(bal_limits_parse_number("0", 1, 10, &v));
    assert_false(bal_limits_parse_number("11", 1, 10, &v));
    assert_false(bal_limits_parse_number(NULL, 0, 10, &v));
    v = 77;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        if (bal_limits_parse_number(refused[i], 0, UINT64_MAX, &v))
            fail_msg("'%s' was read as a number", refused[i]);
    }
    assert_true(v == 77); /* untouched */
}

static char *read_doc(const char *relative)
{
    const char *top = getenv("abs_top_srcdir");
    char path[4096];
    FILE *f;
    char *text;
    long len;

    snprintf(path, sizeof(path), "%s/%s", top != NULL ? top : ".", relative);
    f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    assert_true(len > 0);
    rewind(f);
    text = malloc((size_t)len + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
    text[len] = '\0';
    fclose(f);
    return text;
}

/* The "from MIN to MAX" of the paragraph that starts at the first line holding head, up to the next
 * line starting with one of the ends. */
static void expect_range(const char *text, const char *head, const char *ends, long long min, long long max)
{
    const char *start = strstr(text, head), *end, *from;
    long long a, b;

    if (start == NULL)
        fail_msg("the documentation has no '%s'", head);
    end = start;
    for (;;) {
        end = strchr(end, '\n');
        if (end == NULL || strchr(ends, end[1]) != NULL)
            break;
        end++;
    }
    from = strstr(start, "from ");
    if (from == NULL || (end != NULL && from > end) || sscanf(from, "from %lld to %lld", &a, &b) != 2)
        fail_msg("the paragraph of '%s' states no range 'from MIN to MAX'", head);
    if (a != min || b != max)
        fail_msg("'%s' is documented from %lld to %lld, but the limits are %lld to %lld", head, a, b, min, max);
}

/* The same for a range of seconds with fractions, stated for a limit in milliseconds. */
static void expect_seconds(const char *text, const char *head, long long min_ms, long long max_ms)
{
    const char *start = strstr(text, head), *end, *from;
    double a, b;

    if (start == NULL)
        fail_msg("the documentation has no '%s'", head);
    end = strstr(start + 1, "\n.");
    from = strstr(start, "from"); /* the line may break after it */
    if (from == NULL || (end != NULL && from > end) || sscanf(from, "from %lf to %lf", &a, &b) != 2)
        fail_msg("the paragraph of '%s' states no range 'from MIN to MAX'", head);
    if (llround(a * 1000) != min_ms || llround(b * 1000) != max_ms)
        fail_msg("'%s' is documented from %g to %g s, but the limits are %lld to %lld ms", head, a, b, min_ms,
                 max_ms);
}

static void test_man_page_states_the_limits(void **state)
{
    char *man = read_doc("plugin/collectd-balloon.5");
    (void)state;
    /* A paragraph of the man page ends at the next request (.TP, .SH, .PP ...). */
    expect_range(man, ".BI \"PollingInterval \"", ".", BAL_LIMIT_POLLING_INTERVAL_MIN,
                 BAL_LIMIT_POLLING_INTERVAL_MAX);
    expect_range(man, ".BI \"RefreshInterval \"", ".", BAL_LIMIT_REFRESH_INTERVAL_MIN,
                 BAL_LIMIT_REFRESH_INTERVAL_MAX);
    expect_range(man, ".BI \"StaleAfter \"", ".", BAL_LIMIT_STALE_AFTER_MIN, BAL_LIMIT_STALE_AFTER_MAX);
    expect_range(man, ".BI \"Concurrency \"", ".", BAL_LIMIT_CONCURRENCY_MIN, BAL_LIMIT_CONCURRENCY_MAX);
    expect_seconds(man, ".BI \"Timeout \"", BAL_LIMIT_TIMEOUT_MS_MIN, BAL_LIMIT_TIMEOUT_MS_MAX);
    free(man);
}

static void test_readme_states_balloonctls_limits(void **state)
{
    char *readme = read_doc("README.md");
    (void)state;
    /* The README's balloonctl section: one line per option, an empty line ends it. */
    expect_range(readme, "`--timeout MS`", "\n", BAL_LIMIT_TIMEOUT_MS_MIN, BAL_LIMIT_TIMEOUT_MS_MAX);
    expect_range(readme, "`set-interval SECONDS`", "\n", 0, BAL_LIMIT_POLLING_INTERVAL_MAX);
    free(readme);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_are_digits_only),
        cmocka_unit_test(test_man_page_states_the_limits),
        cmocka_unit_test(test_readme_states_balloonctls_limits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
