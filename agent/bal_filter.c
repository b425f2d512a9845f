#include "config.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "agent/bal_filter.h"
#include "agent/bal_regex.h"

typedef struct selector {
    char *name;   /* exact name, or NULL for a regex */
    bool is_regex;
    regex_t regex;
} selector_t;

struct bal_filter {
    selector_t *items;
    size_t count;
    bool ignore_selected;
};

/* "/x/" with at least one character between the slashes. A lone "/" or "//" is not a regex: the first
 * is refused as a name below (libvirt names cannot hold '/'), the second as an empty regex. */
static bool is_regex_selector(const char *selector, size_t len)
{
    return len >= 2 && selector[0] == '/' && selector[len - 1] == '/';
}

/* Compiles the text between the slashes into *re. Returns 0 or -EINVAL / -ENOMEM with err filled. */
static int compile_selector(const char *selector, size_t len, regex_t *re, bal_error_t *err)
{
    char *pattern;
    int rc;

    if (len == 2)
        return bal_error_set(err, -EINVAL,
                             "The domain selector '%s' is an empty regular expression.", selector);
    /* Before regcomp, whose time and memory the pattern could otherwise make unbounded. */
    rc = bal_regex_check(selector + 1, len - 2, selector, err);
    if (rc < 0)
        return rc;
    pattern = strndup(selector + 1, len - 2);
    if (pattern == NULL)
        return bal_error_set(err, -ENOMEM, "Out of memory compiling the domain selector '%s'.",
                             selector);
    rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB);
    free(pattern);
    if (rc != 0) {
        char why[128];
        regerror(rc, re, why, sizeof(why));
        /* regcomp leaves nothing to free on failure. */
        if (rc == REG_ESPACE)
            return bal_error_set(err, -ENOMEM,
                                 "Out of memory compiling the domain selector '%s'.", selector);
        return bal_error_set(err, -EINVAL,
                             "The domain selector '%s' is not a valid extended regular expression: %s.",
                             selector, why);
    }
    return 0;
}

static int check_name(const char *selector, bal_error_t *err)
{
    if (selector[0] == '\0')
        return bal_error_set(err, -EINVAL, "A domain selector is empty.");
    if (strchr(selector, '/') != NULL)
        return bal_error_set(err, -EINVAL,
                             "The domain selector '%s' holds a '/': write a regular expression as "
                             "'/regex/', or a domain name without '/'.",
                             selector);
    return 0;
}

int bal_filter_check_selector(const char *selector, bal_error_t *err)
{
    size_t len;
    regex_t re;
    int rc;

    if (selector == NULL)
        return bal_error_set(err, -EINVAL, "A domain selector is missing.");
    len = strlen(selector);
    if (!is_regex_selector(selector, len))
        return check_name(selector, err);
    rc = compile_selector(selector, len, &re, err);
    if (rc == 0)
        regfree(&re);
    return rc;
}

int bal_filter_new(const char *const *selectors, size_t n, bool ignore_selected, bal_filter_t **out,
                   bal_error_t *err)
{
    bal_filter_t *filter;
    int rc = 0;

    filter = calloc(1, sizeof(*filter));
    if (filter == NULL)
        return bal_error_set(err, -ENOMEM, "Out of memory creating the domain filter.");
    filter->ignore_selected = ignore_selected;
    if (n > 0) {
        filter->items = calloc(n, sizeof(*filter->items));
        if (filter->items == NULL) {
            rc = bal_error_set(err, -ENOMEM, "Out of memory creating the domain filter.");
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = selectors[i];
        selector_t *item = &filter->items[filter->count];
        size_t len;

        if (s == NULL) {
            rc = bal_error_set(err, -EINVAL, "A domain selector is missing.");
            goto out;
        }
        len = strlen(s);
        if (is_regex_selector(s, len)) {
            rc = compile_selector(s, len, &item->regex, err);
            if (rc < 0)
                goto out;
            item->is_regex = true;
        } else {
            rc = check_name(s, err);
            if (rc < 0)
                goto out;
            item->name = strdup(s);
            if (item->name == NULL) {
                rc = bal_error_set(err, -ENOMEM, "Out of memory creating the domain filter.");
                goto out;
            }
        }
        filter->count++;
    }
    *out = filter;
    filter = NULL;
out:
    bal_filter_free(filter);
    return rc;
}

bool bal_filter_match(const bal_filter_t *filter, const char *name)
{
    bool selected = false;

    if (filter == NULL || filter->count == 0)
        return true;
    for (size_t i = 0; i < filter->count && !selected; i++) {
        const selector_t *item = &filter->items[i];
        if (item->is_regex)
            selected = regexec(&item->regex, name, 0, NULL, 0) == 0;
        else
            selected = strcmp(item->name, name) == 0;
    }
    return selected != filter->ignore_selected;
}

void bal_filter_free(bal_filter_t *filter)
{
    if (filter == NULL)
        return;
    for (size_t i = 0; i < filter->count; i++) {
        if (filter->items[i].is_regex)
            regfree(&filter->items[i].regex);
        free(filter->items[i].name);
    }
    free(filter->items);
    free(filter);
}
