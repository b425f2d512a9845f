/* JSON values as QEMU's QObjects hold them: the requests balloon-sim reads (vb_json_stream.h) and
 * the replies it builds and prints (vb_json_print.h).
 *
 * Numbers are QNums: an int64_t, a uint64_t above INT64_MAX, or a double. A dict keeps its keys in
 * insertion order (vb_order.h gives the order QEMU prints them in) and finds a key in constant time.
 * Strings are NUL-terminated; QEMU's parser never puts a NUL byte in one (modified UTF-8).
 *
 * Ownership: every value has one owner. A container owns what is put in it, also when the put fails
 * (the value is then freed), so that calls can be chained without leaks. Getters return borrowed
 * pointers, valid until the value is changed or freed. Not thread-safe. */
#ifndef VB_QOBJ_H
#define VB_QOBJ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum vb_qobj_type {
    VB_QOBJ_NULL,
    VB_QOBJ_BOOL,
    VB_QOBJ_INT,    /* int64_t */
    VB_QOBJ_UINT,   /* uint64_t above INT64_MAX */
    VB_QOBJ_DOUBLE,
    VB_QOBJ_STRING,
    VB_QOBJ_LIST,
    VB_QOBJ_DICT,
} vb_qobj_type_t;

typedef struct vb_qobj vb_qobj_t;

/* ---- making values: each returns NULL on ENOMEM ---- */

vb_qobj_t *vb_qobj_null(void);
vb_qobj_t *vb_qobj_bool(bool value);
vb_qobj_t *vb_qobj_int(int64_t value);
vb_qobj_t *vb_qobj_uint(uint64_t value); /* stored as INT when it fits, as QEMU's QNum does */
vb_qobj_t *vb_qobj_double(double value);
vb_qobj_t *vb_qobj_string(const char *value); /* copies value */
vb_qobj_t *vb_qobj_string_take(char *value);  /* takes the malloc'ed value over, also on failure */
vb_qobj_t *vb_qobj_list(void);
vb_qobj_t *vb_qobj_dict(void);
/* Frees obj and everything in it; NULL is a no-op. */
void vb_qobj_free(vb_qobj_t *obj);

/* ---- filling containers ---- */

/* Appends value. Returns 0, -ENOMEM (also for a NULL value), or -EINVAL if list is not a list. */
int vb_qobj_list_append(vb_qobj_t *list, vb_qobj_t *value);
/* Puts key (copied); a key already there is replaced in place, as QEMU's qdict_put keeps the first
 * position. Returns 0, -ENOMEM (also for a NULL value), or -EINVAL if dict is not a dict. */
int vb_qobj_dict_put(vb_qobj_t *dict, const char *key, vb_qobj_t *value);
/* Adds a key that must be new, as QEMU's parser requires. Takes the malloc'ed key over as well as
 * value, also on failure. Returns 0, -EEXIST (the key is there already), -ENOMEM or -EINVAL. */
int vb_qobj_dict_add(vb_qobj_t *dict, char *key, vb_qobj_t *value);
/* Takes key's value out of dict: the caller owns it. NULL if there is none (or dict is not a dict). */
vb_qobj_t *vb_qobj_dict_take(vb_qobj_t *dict, const char *key);

/* ---- reading values ---- */

vb_qobj_type_t vb_qobj_type(const vb_qobj_t *obj);
/* Each getter's value for an obj of its type; false, 0 or NULL for any other. */
bool vb_qobj_get_bool(const vb_qobj_t *obj);
int64_t vb_qobj_get_int(const vb_qobj_t *obj);
uint64_t vb_qobj_get_uint(const vb_qobj_t *obj);
double vb_qobj_get_double(const vb_qobj_t *obj);
const char *vb_qobj_get_string(const vb_qobj_t *obj);

/* A list's length and its i-th item (i < length). 0 for anything but a list. */
size_t vb_qobj_list_size(const vb_qobj_t *list);
const vb_qobj_t *vb_qobj_list_at(const vb_qobj_t *list, size_t i);

/* A dict's size, its keys in insertion order, and the value of the i-th key (i < size). The size is
 * 0, and the key array NULL, for NULL or anything but a dict. */
size_t vb_qobj_dict_size(const vb_qobj_t *dict);
const char *const *vb_qobj_dict_keys(const vb_qobj_t *dict);
const vb_qobj_t *vb_qobj_dict_value(const vb_qobj_t *dict, size_t i);
/* key's value, or NULL if there is none or dict is NULL or not a dict. */
const vb_qobj_t *vb_qobj_dict_get(const vb_qobj_t *dict, const char *key);

#endif
