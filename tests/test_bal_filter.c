/* Domain selection: exact names, /regex/ (POSIX ERE), ignore_selected, and refused selectors, among
 * them regexes too costly for glibc's regcomp, refused before regcomp is called (it is wrapped here,
 * -Wl,--wrap=regcomp, to count the calls). */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <regex.h>

#include "agent/bal_agent.h"
#include "agent/bal_filter.h"
#include "agent/bal_limits.h"
#include "agent/bal_regex.h"
#include "tests/tt_env.h"

int __real_regcomp(regex_t *re, const char *pattern, int flags);
int __wrap_regcomp(regex_t *re, const char *pattern, int flags);

static unsigned regcomp_calls;

int __wrap_regcomp(regex_t *re, const char *pattern, int flags)
{
    regcomp_calls++;
    return __real_regcomp(re, pattern, flags);
}

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

/* Refused with a sentence that quotes the selector and says why, and regcomp never sees it. */
static void expect_costly(const char *selector, const char *why)
{
    bal_error_t err = {0};
    bal_filter_t *f = NULL;
    const char *one[1] = {selector};

    regcomp_calls = 0;
    if (bal_filter_check_selector(selector, &err) != -EINVAL)
        fail_msg("'%s' was accepted", selector);
    assert_int_equal(bal_filter_new(one, 1, false, &f, &err), -EINVAL);
    assert_null(f);
    assert_int_equal(regcomp_calls, 0);
    /* A long selector is cut in the message, not the reason. */
    if (strstr(err.message, why) == NULL || (strlen(selector) <= 96 && strstr(err.message, selector) == NULL))
        fail_msg("'%s': %s", selector, err.message);
}

static void expect_compiled(const char *selector)
{
    bal_error_t err = {0};

    regcomp_calls = 0;
    if (bal_filter_check_selector(selector, &err) != 0)
        fail_msg("'%s': %s", selector, err.message);
    assert_int_equal(regcomp_calls, 1);
}

static void test_costly_regexes_refused_before_compiling(void **state)
{
    char deep[2 * BAL_LIMIT_REGEX_DEPTH + 8], ok_deep[2 * BAL_LIMIT_REGEX_DEPTH + 8];
    char literal[BAL_LIMIT_REGEX_WEIGHT + 8];
    size_t n = 0;
    (void)state;
    /* The issue's: 27 s and 8 GiB, and a million copies. */
    expect_costly("/(a{0,32767})/", "copies of its parts");
    expect_costly("/((a{1,100}){1,100}){1,100}/", "copies of its parts");
    expect_costly("/(a{0,255}){0,255}/", "copies of its parts");
    /* An empty group is still a node that glibc copies: 3 s and 3.5 GiB (found by fuzz_plugin_config). */
    expect_costly("/((){1,100}){1,100}/", "copies of its parts");
    expect_costly("/((){1,100}){1,100}){1,100}/", "copies of its parts");
    /* glibc reads a backslash and 0 in a bound as the digit 0: {1\00} is {100}, 2.4 GiB in regcomp
     * (found by fuzz_plugin_config). */
    expect_costly("/((){1,100}){1\\00}/", "copies of its parts");
    expect_costly("/a{2\\0\\0\\0}/", "copies of its parts");
    expect_compiled("/a{1\\0}/");
    /* ... and a backslash and a comma as the comma: {1\,100} is {1,100} (found by fuzz_plugin_config). */
    expect_costly("/((){1,100}){1\\,100}/", "copies of its parts");
    expect_costly("/a{0\\,257}/", "copies of its parts");
    expect_compiled("/a{0\\,256}/");
    /* Anchors and alternations are nodes that match nothing: 44 '$' repeated 100 times took glibc 20 s
     * and 7.4 GiB, 60 '|' 171 MiB (found by fuzz_plugin_config). */
    expect_costly("/(($$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$){2,100})/", "copies of its parts");
    expect_costly("/(||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||){1,100}/",
                  "copies of its parts");
    expect_compiled("/($$$$){0,8}/");
    expect_costly("/($$$$){0,9}/", "copies of its parts");
    expect_compiled("/(||){0,128}/");
    expect_costly("/(||){0,129}/", "copies of its parts");
    expect_compiled("/^(web|db)-[0-9]+$/");
    /* Anchors meeting in repeated optional parts: glibc copies nodes for each combination of their
     * conditions ("{0,32}" 46 MiB, "{0,64}" 1 GiB; found by a search like the test below). */
    expect_costly("/(|(^$)()){0,64}/", "copies of its parts");
    expect_costly("/(\\b\\b\\b\\b){0,64}/", "copies of its parts");
    /* The bound itself, and the ways of writing one. */
    expect_compiled("/a{0,256}/");
    expect_costly("/a{0,257}/", "copies of its parts");
    expect_costly("/a{257}/", "copies of its parts");
    expect_costly("/a{256,}/", "copies of its parts"); /* 256 copies and a star */
    expect_costly("/a{,257}/", "copies of its parts");
    expect_costly("/a{99999999999999999999}/", "copies of its parts");
    /* Parts add up, branches too; nesting multiplies. */
    expect_compiled("/^web-[0-9]{1,4}$/");
    expect_compiled("/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/");
    expect_compiled("/(a{1,10}){1,10}b{0,150}/");
    expect_costly("/(a{1,10}){1,10}b{0,157}/", "copies of its parts");
    expect_costly("/a{0,150}|b{0,150}/", "copies of its parts");
    expect_costly("/([[:alpha:]]{0,40}x){0,40}/", "copies of its parts");
    expect_compiled("/(a+){0,128}/");
    expect_costly("/(a+){0,129}/", "copies of its parts"); /* a+ is aa* to glibc */
    expect_costly("/(a{0,150}(b{0,150}/", "copies of its parts"); /* left open: regcomp parses it */
    /* Text is weight too. */
    literal[0] = '/';
    memset(literal + 1, 'x', BAL_LIMIT_REGEX_WEIGHT + 1);
    literal[BAL_LIMIT_REGEX_WEIGHT + 2] = '/';
    literal[BAL_LIMIT_REGEX_WEIGHT + 3] = '\0';
    expect_costly(literal, "copies of its parts");
    /* Deep nesting: regcomp recurses per level (30000 levels overflow its stack). */
    deep[n++] = '/';
    for (int i = 0; i <= BAL_LIMIT_REGEX_DEPTH; i++)
        deep[n++] = '(';
    deep[n++] = 'a';
    deep[n++] = '/';
    deep[n] = '\0';
    expect_costly(deep, "nests groups more than");
    n = 0;
    ok_deep[n++] = '/';
    for (int i = 0; i < BAL_LIMIT_REGEX_DEPTH; i++)
        ok_deep[n++] = '(';
    ok_deep[n++] = 'a';
    for (int i = 0; i < BAL_LIMIT_REGEX_DEPTH; i++)
        ok_deep[n++] = ')';
    ok_deep[n++] = '/';
    ok_deep[n] = '\0';
    expect_compiled(ok_deep);
    /* Back-references: seconds to match one 200-byte name, which a peer chooses. */
    expect_costly("/(a*)*\\1$/", "back-reference");
    expect_costly("/(x)\\9/", "back-reference");
    expect_compiled("/a\\.b\\\\1/"); /* an escaped backslash, then a literal 1 */
    /* What only looks like a bound or a group is not counted as one. */
    expect_compiled("/[{(]a{0,250}/");
    expect_compiled("/\\(a\\){0,250}/");
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

/* The heaviest selectors the checker lets through, for shapes built of parts that match nothing (the
 * ones glibc's closures grow with) and of ordinary ones: "/(P){0,n}/", "/(PPPP){0,n}/" and
 * "/((P){0,8}){0,n}/" with the largest n accepted. */
static const char *const light_parts[] = {"$", "^", "|", "()", "a", "a?", "a*", "\\b", "\\B", "\\<", "\\>", "\\`",
                                           "\\'", "(^$)", "[a-z]", ".", "\\w", "(|)", "(a|b)"};
enum { N_SHAPES = 3 };

/* Writes shape with part and the bound n into buf (len bytes). */
static void shape_build(unsigned shape, const char *part, unsigned n, char *buf, size_t len)
{
    if (shape == 0)
        snprintf(buf, len, "/(%s){0,%u}/", part, n);
    else if (shape == 1)
        snprintf(buf, len, "/(%s%s%s%s){0,%u}/", part, part, part, part, n);
    else
        snprintf(buf, len, "/((%s){0,8}){0,%u}/", part, n);
}

/* Whether the checker accepts shape with part and the bound n. */
static bool shape_accepted(unsigned shape, const char *part, unsigned n)
{
    char selector[256];
    bal_error_t err = {0};

    shape_build(shape, part, n, selector, sizeof(selector));
    return bal_regex_check(selector + 1, strlen(selector) - 2, selector, &err) == 0;
}

/* Compiles selector in a child limited to limit_mib of address space beyond what it has, and says
 * whether regcomp succeeded there within 30 s. */
static bool compiles_within(const char *selector, unsigned long limit_mib)
{
    long pages = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    int status;
    pid_t pid;

    if (statm != NULL) {
        if (fscanf(statm, "%ld", &pages) != 1)
            pages = 0;
        fclose(statm);
    }
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rlim_t cap = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (rlim_t)limit_mib * 1024 * 1024;
        struct rlimit rl = {cap, cap};
        bal_error_t err = {0};

        alarm(30);
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(3);
        _exit(bal_filter_check_selector(selector, &err) == 0 ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_heaviest_accepted_selectors_compile_in_bounded_memory(void **state)
{
    char selector[256];
    (void)state;
    if (TT_ASAN)
        skip(); /* ASan reserves terabytes of shadow address space: RLIMIT_AS cannot bound it */
    for (unsigned shape = 0; shape < N_SHAPES; shape++)
        for (size_t i = 0; i < sizeof(light_parts) / sizeof(light_parts[0]); i++) {
            unsigned n = 1;

            /* The checker's weight is monotonic in n: the largest accepted one, by doubling and halving. */
            if (!shape_accepted(shape, light_parts[i], n))
                continue;
            while (n < 65536 && shape_accepted(shape, light_parts[i], 2 * n))
                n *= 2;
            for (unsigned step = n / 2; step > 0; step /= 2)
                if (shape_accepted(shape, light_parts[i], n + step))
                    n += step;
            assert_false(shape_accepted(shape, light_parts[i], n + 1));
            shape_build(shape, light_parts[i], n, selector, sizeof(selector));
            if (!compiles_within(selector, 256))
                fail_msg("'%s', accepted by the checker, did not compile within 256 MiB and 30 s.", selector);
        }
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
        cmocka_unit_test(test_costly_regexes_refused_before_compiling),
        cmocka_unit_test(test_bad_selector_among_good_ones_frees_everything),
        cmocka_unit_test(test_heaviest_accepted_selectors_compile_in_bounded_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
