/* Domain selection: exact names, /regex/ (POSIX ERE), ignore_selected, and refused selectors. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/bal_agent.h"
#include "agent/bal_filter.h"

static bal_filter_t *make(const char *const *selectors, size_t n, bool ignore)
{
    bal_filter_t *f = NULL;
    bal_error_t err = {0};

    assert_int_equal(bal_filter_new(selectors, n, ignore, &f, &err), 0);
    assert_non_null(f);
    return f;
}

static void test_no_selector_selects_everything(void **state)
{
    bal_filter_t *f = make(NULL, 0, false);
    bal_filter_t *g = make(NULL, 0, true);
    (void)state;
    assert_true(bal_filter_match(f, "web1"));
    assert_true(bal_filter_match(f, ""));
    /* Like collectd's ignorelist: nothing selected, nothing to ignore. */
    assert_true(bal_filter_match(g, "web1"));
    bal_filter_free(f);
    bal_filter_free(g);
}

static void test_exact_name_is_exact(void **state)
{
    const char *sel[] = {"web1", "db \"main\" \\x"};
    bal_filter_t *f = make(sel, 2, false);
    (void)state;
    assert_true(bal_filter_match(f, "web1"));
    assert_false(bal_filter_match(f, "web10"));
    assert_false(bal_filter_match(f, "Web1"));
    assert_false(bal_filter_match(f, "xweb1"));
    assert_true(bal_filter_match(f, "db \"main\" \\x"));
    assert_false(bal_filter_match(f, "db"));
    bal_filter_free(f);
}

static void test_regex_is_extended_and_unanchored(void **state)
{
    const char *sel[] = {"/^web-[0-9]+$/", "/(db|cache)/"};
    bal_filter_t *f = make(sel, 2, false);
    (void)state;
    assert_true(bal_filter_match(f, "web-12"));
    assert_false(bal_filter_match(f, "web-"));   /* + is ERE, not a literal */
    assert_false(bal_filter_match(f, "web-1a"));
    assert_true(bal_filter_match(f, "old-db-2")); /* unanchored */
    assert_true(bal_filter_match(f, "cache"));
    assert_false(bal_filter_match(f, "mail"));
    bal_filter_free(f);
}

static void test_ignore_selected_inverts(void **state)
{
    const char *sel[] = {"/^test-/", "scratch"};
    bal_filter_t *f = make(sel, 2, true);
    (void)state;
    assert_false(bal_filter_match(f, "test-1"));
    assert_false(bal_filter_match(f, "scratch"));
    assert_true(bal_filter_match(f, "prod-1"));
    assert_true(bal_filter_match(f, "scratch2"));
    bal_filter_free(f);
}

static void test_bad_selectors_refused_with_a_sentence(void **state)
{
    const char *bad[] = {"", "/[unclosed/", "//", "/(/", "a/b", "/",
                         /* stacked repetitions: exponential in glibc's regcomp, refused at once */
                         "/^a++++++++++++++++++++/", "/a*+/", "/x{2}{3}/", "/b?*/"};
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bal_error_t err = {0};
        bal_filter_t *f = NULL;
        const char *one[1] = {bad[i]};

        assert_int_equal(bal_filter_check_selector(bad[i], &err), -EINVAL);
        assert_int_equal(err.code, -EINVAL);
        assert_true(strlen(err.message) > 10);
        assert_int_equal(err.message[strlen(err.message) - 1], '.');
        if (bad[i][0] != '\0')
            assert_non_null(strstr(err.message, bad[i]));
        assert_int_equal(bal_filter_new(one, 1, false, &f, &err), -EINVAL);
        assert_null(f);
        /* The agent's public check is the same. */
        assert_int_equal(bal_agent_check_selector(bad[i], NULL), -EINVAL);
    }
    assert_int_equal(bal_filter_check_selector(NULL, NULL), -EINVAL);
}

static void test_good_selectors_accepted(void **state)
{
    const char *good[] = {"web1", "/./", "/^a|b$/", "name with spaces", "quote\"back\\slash",
                          /* repetitions that only look stacked: escaped, in brackets, apart */
                          "/a\\++/", "/[+*]+/", "/[]+]*/", "/(a+)+/", "/a{2}b+/"};
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(bal_filter_check_selector(good[i], NULL), 0);
}

static void test_bad_selector_among_good_ones_frees_everything(void **state)
{
    /* Under ASan this also proves the compiled regexes before the bad one are freed. */
    const char *sel[] = {"/^a/", "b", "/(/"};
    bal_filter_t *f = NULL;
    bal_error_t err = {0};
    (void)state;
    assert_int_equal(bal_filter_new(sel, 3, false, &f, &err), -EINVAL);
    assert_null(f);
    assert_non_null(strstr(err.message, "'/(/'"));
    bal_filter_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_selector_selects_everything),
        cmocka_unit_test(test_exact_name_is_exact),
        cmocka_unit_test(test_regex_is_extended_and_unanchored),
        cmocka_unit_test(test_ignore_selected_inverts),
        cmocka_unit_test(test_bad_selectors_refused_with_a_sentence),
        cmocka_unit_test(test_good_selectors_accepted),
        cmocka_unit_test(test_bad_selector_among_good_ones_frees_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
