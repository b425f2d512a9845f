/* The timer heap: against a plain array kept sorted by brute force, through random pushes, re-keys,
 * "never" keys and removals; plus the cases a loop relies on. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "virtio/vb_heap.h"

#define N 500

static int64_t brute_min(const vb_heap_node_t *nodes, size_t n)
{
    int64_t min = INT64_MAX;
    for (size_t i = 0; i < n; i++)
        if (nodes[i].index != 0 && nodes[i].key < min)
            min = nodes[i].key;
    return min;
}

static void test_random_operations_match_brute_force(void **state)
{
    static vb_heap_node_t nodes[N];
    vb_heap_t heap = {0};
    uint64_t rng = 88172645463325252u;
    (void)state;

    for (int step = 0; step < 20000; step++) {
        size_t i;
        unsigned op;
        vb_heap_node_t *top;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        i = rng % N;
        op = (unsigned)(rng >> 20) % 4;
        if (op == 0)
            vb_heap_remove(&heap, &nodes[i]);
        else if (op == 1)
            assert_int_equal(vb_heap_set(&heap, &nodes[i], INT64_MAX), 0);
        else
            assert_int_equal(vb_heap_set(&heap, &nodes[i], (int64_t)(rng >> 33) % 1000), 0);
        top = vb_heap_top(&heap);
        if (brute_min(nodes, N) == INT64_MAX)
            assert_null(top);
        else
            assert_true(top->key == brute_min(nodes, N));
    }
    /* drain in order */
    {
        int64_t last = INT64_MIN;
        vb_heap_node_t *top;
        while ((top = vb_heap_top(&heap)) != NULL) {
            assert_true(top->key >= last);
            last = top->key;
            vb_heap_remove(&heap, top);
            assert_int_equal(top->index, 0);
        }
    }
    vb_heap_free(&heap);
}

static void test_never_keeps_a_node_out(void **state)
{
    vb_heap_t heap = {0};
    vb_heap_node_t a = {0}, b = {0};
    (void)state;

    assert_int_equal(vb_heap_set(&heap, &a, INT64_MAX), 0);
    assert_null(vb_heap_top(&heap));
    assert_int_equal(vb_heap_set(&heap, &a, 5), 0);
    assert_int_equal(vb_heap_set(&heap, &b, 3), 0);
    assert_ptr_equal(vb_heap_top(&heap), &b);
    assert_int_equal(vb_heap_set(&heap, &b, 9), 0); /* later: a comes first */
    assert_ptr_equal(vb_heap_top(&heap), &a);
    assert_int_equal(vb_heap_set(&heap, &a, INT64_MAX), 0);
    assert_ptr_equal(vb_heap_top(&heap), &b);
    assert_int_equal(heap.count, 1);
    vb_heap_remove(&heap, &a); /* not in it: nothing happens */
    assert_int_equal(heap.count, 1);
    vb_heap_free(&heap);
    vb_heap_free(&heap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_operations_match_brute_force),
        cmocka_unit_test(test_never_keeps_a_node_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
