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
    expect_costly("/(($$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$){2,100})/", "next to too many parts");
    expect_costly("/(||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||){1,100}/",
                  "copies of its parts");
    expect_compiled("/(a$$$){0,10}/");
    expect_costly("/(a$$$){0,11}/", "copies of its parts");
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
    /* A loop around a part that can match nothing: glibc computes closures again along every path
     * through it, exponential in the part's size ("((){1,100}){1,}" 2.5 s, from fuzz_plugin_config in
     * CI; "(((a?){1,2}){1,40})*" more than a minute, both far under the weight limit). */
    expect_costly("/((){1,100}){1,}/", "can match the empty string");
    expect_costly("/(((a?){1,2}){1,40})*/", "can match the empty string");
    expect_costly("/(a*)*/", "can match the empty string");
    expect_costly("/(x|)+/", "can match the empty string");
    expect_costly("/(|x)+/", "can match the empty string");
    expect_costly("/(a|b?){2,}/", "can match the empty string");
    expect_costly("/(a?b?)*/", "can match the empty string");
    expect_costly("/(^)*/", "can match the empty string");
    expect_costly("/(a{0,3})*/", "can match the empty string");
    expect_costly("/(a{0})+/", "can match the empty string");
    expect_costly("/((a|b)?(c|))*/", "can match the empty string");
    /* ... but not a loop around a part that must match a character, nor a bounded repetition of one
     * that need not. */
    expect_compiled("/(a?b)*/");
    expect_compiled("/(a|b)+/");
    expect_compiled("/(b(a?){1,100})*/");
    expect_compiled("/((a?){1,100}b){1,}/");
    expect_compiled("/(((a?){1,2}){1,40})/");
    expect_compiled("/((){1,100})/");
    expect_compiled("/(a{1,3})+/");
    expect_compiled("/(-[0-9]+)*$/");
    expect_compiled("/(\\.)*/");
    /* An anchor next to parts that can match nothing: glibc copies all that the anchor's closure
     * reaches for each of its conditions ("\b(a?){1,120}(a?){1,120}" 0.9 GiB at weight 248, found by
     * a random search over patterns the checker accepted). Each copy of "(a?)" is 3 nodes. */
    expect_costly("/\\b(a?){1,120}(a?){1,120}/", "next to too many parts");
    expect_compiled("/\\b(a?){1,42}/");
    expect_costly("/\\b(a?){1,43}/", "next to too many parts");
    expect_costly("/(a?){1,43}$/", "next to too many parts");
    expect_costly("/\\<((a?){1,2}){1,60}/", "next to too many parts");
    /* ... wherever the reach goes: out of a group, into a branch, between the copies of a repetition */
    expect_costly("/(x\\b(a?){1,30})(a?){1,30}/", "next to too many parts");
    expect_costly("/(a?){1,60}(\\<|x)/", "next to too many parts");
    expect_costly("/(x(a?){1,30}\\b(a?){1,30}){1,2}/", "next to too many parts");
    /* ... but a character ends it, and the usual optional parts are far from it. */
    expect_compiled("/\\bx(a?){1,80}/");
    expect_compiled("/(a?){1,80}x$/");
    expect_compiled("/^[a-z0-9-]{0,63}$/");
    expect_compiled("/^(web|db)(-[0-9]+)?$/");
    /* Nodes times anchors: each anchor's condition copies all it reaches ("a\B(\b()){1,27}" 611 MiB). */
    expect_compiled("/(()\\b){1,6}/");
    expect_costly("/(()\\b){1,7}/", "next to too many parts");
    expect_costly("/a\\B(\\b()){1,27}/", "next to too many parts");
    expect_compiled("/\\b\\b(a?){1,20}/");
    /* Back-references: seconds to match one 200-byte name, which a peer chooses. */
    expect_costly("/(a*)b*\\1$/", "back-reference");
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
 * ones glibc's closures grow with) and of ordinary ones: "/(P){0,n}/", "/(PPPP){0,n}/",
 * "/((P){0,8}){0,n}/", "/^(P){1,n}$/" and "/(x(P){0,n})+/" with the largest n accepted. */
static const char *const light_parts[] = {"$", "^", "|", "()", "a", "a?", "a*", "\\b", "\\B", "\\<", "\\>", "\\`",
                                           "\\'", "(^$)", "[a-z]", ".", "\\w", "(|)", "(a|b)"};
enum { N_SHAPES = 5 };

/* Writes shape with part and the bound n into buf (len bytes). */
static void shape_build(unsigned shape, const char *part, unsigned n, char *buf, size_t len)
{
    if (shape == 0)
        snprintf(buf, len, "/(%s){0,%u}/", part, n);
    else if (shape == 1)
        snprintf(buf, len, "/(%s%s%s%s){0,%u}/", part, part, part, part, n);
    else if (shape == 2)
        snprintf(buf, len, "/((%s){0,8}){0,%u}/", part, n);
    else if (shape == 3)
        snprintf(buf, len, "/^(%s){1,%u}$/", part, n);
    else
        snprintf(buf, len, "/(x(%s){0,%u})+/", part, n);
}

/* Whether the checker accepts selector ("/.../"), before any compiling. */
static bool checker_accepts(const char *selector)
{
    bal_error_t err = {0};

    return bal_regex_check(selector + 1, strlen(selector) - 2, selector, &err) == 0;
}

/* Whether the checker accepts shape with part and the bound n. */
static bool shape_accepted(unsigned shape, const char *part, unsigned n)
{
    char selector[256];

    shape_build(shape, part, n, selector, sizeof(selector));
    return checker_accepts(selector);
}

/* Compiles selector in a child limited to limit_mib of address space beyond what it has and to
 * cpu_s seconds of CPU, and says whether regcomp succeeded there within 30 s. With malformed_ok, the
 * pattern is given to regcomp directly and only running out of memory or time counts as failing (not
 * a pattern it refuses). */
static bool compiles_within(const char *selector, unsigned long limit_mib, unsigned cpu_s, bool malformed_ok)
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
        struct rlimit rl = {cap, cap}, cpu = {cpu_s, cpu_s};
        bal_error_t err = {0};

        alarm(30);
        if (setrlimit(RLIMIT_AS, &rl) != 0 || setrlimit(RLIMIT_CPU, &cpu) != 0)
            _exit(3);
        if (malformed_ok) {
            char pattern[256];
            regex_t re;

            snprintf(pattern, sizeof(pattern), "%.*s", (int)(strlen(selector) - 2), selector + 1);
            _exit(__real_regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) == REG_ESPACE ? 1 : 0);
        }
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
            if (!compiles_within(selector, 256, 30, false))
                fail_msg("'%s', accepted by the checker, did not compile within 256 MiB and 30 s.", selector);
        }
}

/* Random patterns built of what makes glibc's closures long (anchors, empty groups, optional parts,
 * alternations, bounds, loops), nested in groups: every one the checker accepts must compile within
 * RANDOM_LIMIT_MIB and RANDOM_LIMIT_CPU_S (the worst found take 0.05 s). Seeded, so that a failure
 * names the same pattern on every run; the search that found "\b(a?){1,120}(a?){1,120}" and
 * "a\B(\b()){1,27}" (0.9 GiB and 611 MiB). */
static const char *const random_atoms[] = {"a", "[a-z]", "()", "^", "$", "\\b", "\\B", "\\<"};
static const char *const random_repeats[] = {"?", "*", "+", "{1,2}", "{0,3}", "{2,}", "{0,8}", "{1,10}",
                                             "{1,27}", "{1,40}", "{1,100}", "{1,120}"};
enum { RANDOM_PATTERNS = 3000, RANDOM_DEPTH = 3, RANDOM_LIMIT_MIB = 64, RANDOM_LIMIT_CPU_S = 2 };

static uint32_t next_random(uint32_t *state)
{
    /* xorshift32: the same sequence on every machine */
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

#define PICK(state, table) ((table)[next_random(state) % (sizeof(table) / sizeof((table)[0]))])

/* Appends to buf (len bytes) one to three parts, each an atom or a group of such parts, with a
 * repetition half of the time, and a '|' between two parts now and then. */
static void random_sequence(uint32_t *state, unsigned depth, char *buf, size_t len)
{
    unsigned parts = 1 + next_random(state) % 3;

    for (unsigned i = 0; i < parts; i++) {
        if (i > 0 && next_random(state) % 5 == 0)
            strncat(buf, "|", len - strlen(buf) - 1);
        if (depth < RANDOM_DEPTH && next_random(state) % 2 == 0) {
            strncat(buf, "(", len - strlen(buf) - 1);
            random_sequence(state, depth + 1, buf, len);
            strncat(buf, ")", len - strlen(buf) - 1);
        } else {
            strncat(buf, PICK(state, random_atoms), len - strlen(buf) - 1);
        }
        if (next_random(state) % 2 == 0)
            strncat(buf, PICK(state, random_repeats), len - strlen(buf) - 1);
    }
}

static void test_random_accepted_selectors_compile_in_bounded_memory(void **state)
{
    uint32_t seed = 20261202;
    unsigned accepted = 0, refused = 0;
    (void)state;
    if (TT_ASAN || tt_skip_slow())
        skip(); /* ASan: no RLIMIT_AS; valgrind: thousands of children, each slowed down 50 times */
    for (unsigned k = 0; k < RANDOM_PATTERNS; k++) {
        char selector[240] = "/";

        random_sequence(&seed, 0, selector, sizeof(selector) - 1);
        strcat(selector, "/");
        if (!checker_accepts(selector)) {
            refused++;
            continue;
        }
        accepted++;
        if (!compiles_within(selector, RANDOM_LIMIT_MIB, RANDOM_LIMIT_CPU_S, true))
            fail_msg("'%s', accepted by the checker, did not compile within %d MiB and %d s of CPU.", selector,
                     RANDOM_LIMIT_MIB, RANDOM_LIMIT_CPU_S);
    }
    /* Both sides of the checker are exercised, or the search proves nothing. */
    assert_true(accepted > RANDOM_PATTERNS / 20);
    assert_true(refused > RANDOM_PATTERNS / 20);
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
        cmocka_unit_test(test_random_accepted_selectors_compile_in_bounded_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
