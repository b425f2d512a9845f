/* The plugin tests' cmocka fixture (see test_plugin_fixture.h). */
#include "tests/test_plugin_fixture.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "plugin/bp_series.h"
#include "tests/test_plugin_agent.h"
#include "tests/test_plugin_core.h"

int pf_setup(void **state)
{
    (void)state;
    fc_reset();
    fa_reset();
    module_register();
    return 0;
}

static int finish(bool prefixed)
{
    if (getenv("FC_DUMP_LOGS") != NULL) /* FC_DUMP_LOGS=1: every test's log on stderr */
        fc_dump_logs();
    fc_shutdown();
    assert_int_equal(fa_n_alive(), 0);
    assert_int_equal(bp_series_count(), 0); /* no domain's claim on an identifier left behind */
    for (size_t i = 0; prefixed && i < fc_n_logs(); i++) {
        if (strncmp(fc_log(i)->message, "balloon plugin: ", 16) != 0) {
            fc_dump_logs();
            fail_msg("log without the plugin's prefix: %s", fc_log(i)->message);
        }
    }
    fc_reset();
    return 0;
}

int pf_teardown(void **state)
{
    (void)state;
    return finish(false);
}

int pf_teardown_prefixed(void **state)
{
    (void)state;
    return finish(true);
}

int pf_run_tests(const struct CMUnitTest *tests, size_t n, CMFixtureFunction teardown)
{
    struct CMUnitTest *with_fixture = calloc(n, sizeof(*with_fixture));
    int failed;

    if (with_fixture == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        with_fixture[i] = tests[i];
        with_fixture[i].setup_func = pf_setup;
        with_fixture[i].teardown_func = teardown;
    }
    /* What the cmocka_run_group_tests macro calls, under the name it would give. */
    failed = _cmocka_run_group_tests("tests", with_fixture, n, NULL, NULL);
    free(with_fixture);
    return failed;
}
