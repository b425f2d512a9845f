/* The cmocka fixture of the plugin's unit tests: the plugin registered in the fake collectd core
 * (tests/test_plugin_core.h) with the scripted agent behind it (tests/test_plugin_agent.h), fresh for
 * every test. */
#ifndef TEST_PLUGIN_FIXTURE_H
#define TEST_PLUGIN_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Setup: resets the fake core and the scripted agent, then calls the plugin's module_register. */
int pf_setup(void **state);

/* Teardown: runs the plugin's shutdown callback, asserts that every agent the plugin made was
 * freed, whatever the test did, and resets the fake core. */
int pf_teardown(void **state);

/* pf_teardown that also asserts that every message logged starts with the plugin's
 * "balloon plugin: " prefix, printing the log when one does not: the plugin says where its messages
 * come from, and collectd refused no value (the fake core logs each refusal without that prefix).
 * Not for tests of configuration mistakes: collectd's cf_util_get_* messages have no prefix either. */
int pf_teardown_prefixed(void **state);

/* cmocka_run_group_tests(tests, NULL, NULL) for the n tests, each run between pf_setup and the
 * given teardown. Returns the number of tests that failed; aborts when out of memory. */
int pf_run_tests(const struct CMUnitTest *tests, size_t n, CMFixtureFunction teardown);

#endif
