/* A binary min-heap of deadlines: see vb_heap.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "virtio/vb_heap.h"

static void place(vb_heap_t *h, size_t i, vb_heap_node_t *node)
{
    h->items[i] = node;
    node->index = i + 1;
}

static void sift_up(vb_heap_t *h, size_t i)
{
    vb_heap_node_t *node = h->items[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->items[parent]->key <= node->key)
            break;
        place(h, i, h->items[parent]);
        i = parent;
    }
    place(h, i, node);
}

static void sift_down(vb_heap_t *h, size_t i)
{
    vb_heap_node_t *node = h->items[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->count)
            break;
        if (child + 1 < h->count && h->items[child + 1]->key < h->items[child]->key)
            child++;
        if (node->key <= h->items[child]->key)
            break;
        place(h, i, h->items[child]);
        i = child;
    }
    place(h, i, node);
}

void vb_heap_free(vb_heap_t *heap)
{
    free(heap->items);
    heap->items = NULL;
    heap->count = heap->cap = 0;
}

void vb_heap_remove(vb_heap_t *h, vb_heap_node_t *node)
{
    size_t i;
    vb_heap_node_t *last;

    if (node->index == 0)
        return;
    i = node->index - 1;
    node->index = 0;
    last = h->items[--h->count];
    if (i == h->count)
        return;
    place(h, i, last);
    /* the moved node may have to go either way */
    sift_up(h, i);
    sift_down(h, last->index - 1);
}

int vb_heap_set(vb_heap_t *h, vb_heap_node_t *node, int64_t key)
{
    if (key == INT64_MAX) {
        vb_heap_remove(h, node);
        node->key = key;
        return 0;
    }
    if (node->index != 0) {
        int64_t old = node->key;
        node->key = key;
        if (key < old)
            sift_up(h, node->index - 1);
        else if (key > old)
            sift_down(h, node->index - 1);
        return 0;
    }
    if (h->count == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        vb_heap_node_t **items = realloc(h->items, cap * sizeof(*items));
        if (items == NULL)
            return -ENOMEM;
        h->items = items;
        h->cap = cap;
    }
    node->key = key;
    place(h, h->count++, node);
    sift_up(h, h->count - 1);
    return 0;
}

vb_heap_node_t *vb_heap_top(const vb_heap_t *h)
{
    return h->count > 0 ? h->items[0] : NULL;
}
