/* agent/bal_text (the one cleaning of text from outside) and agent/bal_summary (many domains in one
 * line): control characters, C1 controls, every kind of invalid UTF-8, cutting at a character
 * boundary, and the summary's names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/bal_summary.h"
#include "agent/bal_text.h"

#define R BAL_TEXT_REPLACEMENT

static void expect_clean(const char *in, unsigned flags, const char *want)
{
    char out[256];
    char *dup;

    assert_int_equal(bal_text_clean(out, sizeof(out), in, flags), strlen(want));
    assert_string_equal(out, want);
    dup = bal_text_dup_clean(in, flags);
    assert_non_null(dup);
    assert_string_equal(dup, want);
    free(dup);
    assert_true(bal_text_is_clean(in, flags) == (strcmp(in, want) == 0));
}

static void test_valid_text_is_unchanged(void **state)
{
    (void)state;
    expect_clean("", 0, "");
    expect_clean("web-1", 0, "web-1");
    expect_clean("it's \"my\" vm \\ 100%", 0, "it's \"my\" vm \\ 100%");
    /* Two-, three- and four-byte characters, the edges of each range included. */
    expect_clean("\xc2\xa0 \xc3\xbc \xdf\xbf", 0, "\xc2\xa0 \xc3\xbc \xdf\xbf");
    expect_clean("\xe0\xa0\x80 \xe2\x82\xac \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbd", 0,
                 "\xe0\xa0\x80 \xe2\x82\xac \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbd");
    expect_clean("\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf", 0, "\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf");
}

static void test_controls_become_question_marks(void **state)
{
    (void)state;
    /* A newline would forge a log line; ESC and CSI (U+009B) drive a terminal. */
    expect_clean("a\nb\rc\td", 0, "a?b?c?d");
    expect_clean("x\x1b[2Jy\x7f", 0, "x?[2Jy?");
    expect_clean("\xc2\x80 \xc2\x9b" "31m \xc2\x9f \xc2\xa0", 0, "? ?31m ? \xc2\xa0");
    expect_clean("\x01\x1f", 0, "??");
    /* Unicode's own line and paragraph separators, which JSON readers and web pages break at. */
    expect_clean("a\xe2\x80\xa8" "b\xe2\x80\xa9" "c\xe2\x80\xa7", 0, "a?b?c\xe2\x80\xa7");
    /* Kept for a JSON generator, which escapes them itself. */
    expect_clean("a\nb\x1b\xc2\x9b", BAL_TEXT_KEEP_CONTROLS, "a\nb\x1b\xc2\x9b");
}

static void test_invalid_utf8_becomes_replacement_characters(void **state)
{
    (void)state;
    expect_clean("a\xff" "b", 0, "a" R "b");
    expect_clean("\x80\xbf", 0, R R);               /* lone continuation bytes */
    expect_clean("\xc0\xaf \xc1\xbf", 0, R R " " R R); /* overlong two-byte forms */
    expect_clean("\xe0\x80\xaf", 0, R R R);           /* overlong three-byte form */
    expect_clean("\xf0\x80\x80\xaf", 0, R R R R);     /* overlong four-byte form */
    expect_clean("\xed\xa0\x80", 0, R R R);           /* a UTF-16 surrogate */
    expect_clean("\xf4\x90\x80\x80", 0, R R R R);     /* above U+10FFFF */
    expect_clean("\xf5\x80", 0, R R);
    expect_clean("ab\xc3", 0, "ab" R);                /* cut short at the end */
    expect_clean("\xe2\x82x", 0, R R "x");            /* cut short in the middle */
    /* The same with controls kept: invalid bytes are replaced all the same. */
    expect_clean("\n\xff", BAL_TEXT_KEEP_CONTROLS, "\n" R);
}

static void test_cut_at_a_character_boundary(void **state)
{
    char out[5];
    (void)state;
    /* "ab" and a three-byte character need 6 bytes: the character is left out whole. */
    assert_int_equal(bal_text_clean(out, sizeof(out), "ab\xe2\x82\xac", 0), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(bal_text_clean(out, sizeof(out), "abc\xff", 0), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(bal_text_clean(out, sizeof(out), "abcdefg", 0), 4);
    assert_string_equal(out, "abcd");
    assert_int_equal(bal_text_clean(out, 1, "abc", 0), 0);
    assert_string_equal(out, "");
    assert_int_equal(bal_text_clean(out, sizeof(out), NULL, 0), 0);
    assert_string_equal(out, "");
}

/* Every byte string of length 1 and 2 comes out valid UTF-8 without controls. */
static void test_every_short_input_comes_out_clean(void **state)
{
    char in[3] = {0}, out[16];
    (void)state;
    for (int a = 1; a < 256; a++) {
        for (int b = 0; b < 256; b++) {
            in[0] = (char)a;
            in[1] = (char)b;
            bal_text_clean(out, sizeof(out), in, 0);
            assert_true(bal_text_is_clean(out, 0));
        }
    }
}

static void test_summary_keeps_the_first_names(void **state)
{
    bal_summary_t s;
    char names[512];
    (void)state;
    bal_summary_clear(&s);
    assert_string_equal(bal_summary_names(&s, names, sizeof(names)), "");
    bal_summary_add(&s, "a", "first error");
    assert_string_equal(bal_summary_names(&s, names, sizeof(names)), "'a'");
    bal_summary_add(&s, "b\nforged", NULL);
    assert_string_equal(bal_summary_names(&s, names, sizeof(names)), "'a' and 'b?forged'");
    bal_summary_add(&s, "c", "third");
    bal_summary_add(&s, "d", "fourth");
    bal_summary_add(&s, "e", "fifth");
    assert_int_equal(s.count, 5);
    assert_string_equal(bal_summary_names(&s, names, sizeof(names)), "'a', 'b?forged' and 'c'");
    assert_string_equal(s.kept[0].detail, "first error");
    assert_string_equal(s.kept[1].detail, "");
    /* Cut whole characters only. */
    bal_summary_clear(&s);
    bal_summary_add(&s, "\xc3\xbc\xc3\xbc", NULL);
    assert_string_equal(bal_summary_names(&s, names, 5), "'\xc3\xbc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_text_is_unchanged),
        cmocka_unit_test(test_controls_become_question_marks),
        cmocka_unit_test(test_invalid_utf8_becomes_replacement_characters),
        cmocka_unit_test(test_cut_at_a_character_boundary),
        cmocka_unit_test(test_every_short_input_comes_out_clean),
        cmocka_unit_test(test_summary_keeps_the_first_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
