/* The benchmark harness's reader of collectd's config syntax: the tree a plugin's config callback
 * gets must be the one collectd would build. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tests/bench/bench_config.h"

static oconfig_item_t *parse(const char *text, char *err, size_t errlen)
{
    return bench_config_parse(text, strlen(text), "Plugin", "virt", err, errlen);
}

static void test_values_and_types(void **state)
{
    char err[256] = "";
    (void)state;
    oconfig_item_t *root = parse("Connection \"qemu:///system\"  # comment \"here\"\n"
                                 "RefreshInterval 60\n"
                                 "ReportBlockDevices false\n"
                                 "ExtraStats \"memory\" pcpu\n"
                                 "Domain \"a \\\"quoted\\\" \\\\ name\"\n",
                                 err, sizeof(err));
    assert_non_null(root);
    assert_string_equal(root->key, "Plugin");
    assert_int_equal(root->values_num, 1);
    assert_string_equal(root->values[0].value.string, "virt");
    assert_int_equal(root->children_num, 5);

    oconfig_item_t *c = root->children;
    assert_string_equal(c[0].key, "Connection");
    assert_int_equal(c[0].values_num, 1);
    assert_int_equal(c[0].values[0].type, OCONFIG_TYPE_STRING);
    assert_string_equal(c[0].values[0].value.string, "qemu:///system");
    assert_int_equal(c[1].values[0].type, OCONFIG_TYPE_NUMBER);
    assert_true(c[1].values[0].value.number == 60.0);
    assert_int_equal(c[2].values[0].type, OCONFIG_TYPE_BOOLEAN);
    assert_int_equal(c[2].values[0].value.boolean, 0);
    assert_int_equal(c[3].values_num, 2);
    assert_string_equal(c[3].values[1].value.string, "pcpu");
    assert_string_equal(c[4].values[0].value.string, "a \"quoted\" \\ name");
    for (int i = 0; i < root->children_num; i++)
        assert_ptr_equal(c[i].parent, root);
    bench_config_free(root);
}

static void test_nested_blocks_and_continuation(void **state)
{
    char err[256] = "";
    (void)state;
    oconfig_item_t *root = parse("<Instance \"one\" 2>\n"
                                 "  Socket \"a\" \\\n"
                                 "         \"/run/a.qmp\"\n"
                                 "  <Inner>\n"
                                 "    Deep yes\n"
                                 "  </Inner>\n"
                                 "</instance>\n"
                                 "After 1.5\n",
                                 err, sizeof(err));
    assert_non_null(root);
    assert_int_equal(root->children_num, 2);
    oconfig_item_t *block = &root->children[0];
    assert_string_equal(block->key, "Instance");
    assert_int_equal(block->values_num, 2);
    assert_string_equal(block->values[0].value.string, "one");
    assert_true(block->values[1].value.number == 2.0);
    assert_int_equal(block->children_num, 2);
    assert_int_equal(block->children[0].values_num, 2);
    assert_string_equal(block->children[0].values[1].value.string, "/run/a.qmp");
    /* Parents must point at the final arrays, not at ones moved by later appends. */
    assert_ptr_equal(block->children[1].parent, block);
    assert_ptr_equal(block->children[1].children[0].parent, &block->children[1]);
    assert_int_equal(block->children[1].children[0].values[0].type, OCONFIG_TYPE_BOOLEAN);
    assert_int_equal(block->children[1].children[0].values[0].value.boolean, 1);
    assert_string_equal(root->children[1].key, "After");
    bench_config_free(root);
}

static void test_errors_name_the_line(void **state)
{
    static const struct {
        const char *text;
        const char *line;
    } cases[] = {
        {"A 1\nB \"open\n", "line 2"},
        {"<Block>\nA 1\n", "line 3"},
        {"A 1\n</Block>\n", "line 2"},
        {"<Block>\n</Other>\n", "line 2"},
        {"\"quoted\" key\n", "line 1"},
        {"A 1\n\nB <x\n", "line 3"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        oconfig_item_t *root = parse(cases[i].text, err, sizeof(err));
        assert_null(root);
        assert_non_null(strstr(err, cases[i].line));
    }
}

static void test_empty_text_gives_empty_block(void **state)
{
    char err[16];
    (void)state;
    oconfig_item_t *root = bench_config_parse("", 0, "Plugin", NULL, err, sizeof(err));
    assert_non_null(root);
    assert_int_equal(root->values_num, 0);
    assert_int_equal(root->children_num, 0);
    bench_config_free(root);
    bench_config_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_types),
        cmocka_unit_test(test_nested_blocks_and_continuation),
        cmocka_unit_test(test_errors_name_the_line),
        cmocka_unit_test(test_empty_text_gives_empty_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
