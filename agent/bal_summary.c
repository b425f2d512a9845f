#include "config.h"

#include <stdio.h>

#include "agent/bal_summary.h"
#include "agent/bal_text.h"

void bal_summary_clear(bal_summary_t *s)
{
    s->count = 0;
}

void bal_summary_add(bal_summary_t *s, const char *name, const char *detail)
{
    if (s->count < BAL_SUMMARY_KEPT) {
        bal_text_clean(s->kept[s->count].name, sizeof(s->kept[s->count].name), name, 0);
        bal_text_clean(s->kept[s->count].detail, sizeof(s->kept[s->count].detail), detail, 0);
    }
    s->count++;
}

char *bal_summary_names(const bal_summary_t *s, char *buf, size_t len)
{
    /* Room for every kept name, quoted, with the separators. */
    char all[BAL_SUMMARY_KEPT * (sizeof(s->kept[0].name) + 8)];
    size_t kept = s->count < BAL_SUMMARY_KEPT ? s->count : BAL_SUMMARY_KEPT;
    size_t used = 0;

    all[0] = '\0';
    for (size_t i = 0; i < kept; i++) {
        const char *sep = i == 0 ? "" : i + 1 == kept ? " and " : ", ";
        int n = snprintf(all + used, sizeof(all) - used, "%s'%s'", sep, s->kept[i].name);

        if (n > 0)
            used += (size_t)n;
    }
    /* Cut, if it must be, at a character boundary. */
    bal_text_clean(buf, len, all, 0);
    return buf;
}
