/* A binary min-heap of deadlines, for balloon-sim's timers: thousands of devices, each with its next
 * deadline; the event loop sleeps until the earliest and runs only the devices that are due. Push,
 * remove and re-key are O(log n); nodes are embedded in the caller's records (intrusive). */
#ifndef VB_HEAP_H
#define VB_HEAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct vb_heap_node {
    int64_t key;  /* read-only for the caller; set through vb_heap_set */
    size_t index; /* position + 1 in the heap, 0 when not in it */
} vb_heap_node_t;

typedef struct vb_heap {
    vb_heap_node_t **items;
    size_t count, cap;
} vb_heap_t;

/* A zeroed vb_heap_t is an empty heap. vb_heap_free releases the array, not the nodes. */
void vb_heap_free(vb_heap_t *heap);

/* Puts node in the heap with key, or moves it there if it is in already. A key of INT64_MAX
 * ("never") takes the node out instead, so idle devices cost nothing. Returns 0 or -ENOMEM. */
int vb_heap_set(vb_heap_t *heap, vb_heap_node_t *node, int64_t key);
/* Takes node out; a node not in the heap is left alone. */
void vb_heap_remove(vb_heap_t *heap, vb_heap_node_t *node);
/* The node with the smallest key, or NULL when the heap is empty. */
vb_heap_node_t *vb_heap_top(const vb_heap_t *heap);

#endif
