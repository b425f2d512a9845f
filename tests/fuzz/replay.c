/* A main() for a fuzz target: runs LLVMFuzzerTestOneInput once on every file of the target's seed
 * corpus and regressions (tests/fuzz/corpus/NAME, tests/fuzz/regressions/NAME under $abs_top_srcdir,
 * or the directories and files given as arguments). A crash or a failed invariant aborts the test;
 * the file being run is printed first so that the failing input is named. FUZZ_NAME is set by the
 * build. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_NAME
#error "FUZZ_NAME must name the target's corpus directory"
#endif

/* Larger inputs are not ours: libFuzzer runs use -max_len well below this. */
#define REPLAY_MAX_INPUT (16 * 1024 * 1024)

static int run_file(const char *path, unsigned *count)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t len = 0;
    FILE *f;
    int ret = -1;

    f = fopen(path, "rb");
    if (f == NULL || fstat(fileno(f), &st) < 0) {
        fprintf(stderr, "replay: cannot read '%s': %s\n", path, strerror(errno));
        goto out;
    }
    if (st.st_size > REPLAY_MAX_INPUT) {
        fprintf(stderr, "replay: '%s' is larger than %d bytes\n", path, REPLAY_MAX_INPUT);
        goto out;
    }
    /* one byte more than needed, so that an empty file is a valid non-NULL buffer too */
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL)
        goto out;
    len = fread(buf, 1, (size_t)st.st_size, f);
    if (len != (size_t)st.st_size) {
        fprintf(stderr, "replay: short read on '%s'\n", path);
        goto out;
    }
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
    LLVMFuzzerTestOneInput(buf, len);
    (*count)++;
    ret = 0;
out:
    free(buf);
    if (f != NULL)
        fclose(f);
    return ret;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir, in name order, so that runs are reproducible. A missing dir is empty. */
static int run_path(const char *path, unsigned *count)
{
    struct dirent *de;
    struct stat st;
    char **names = NULL;
    size_t n = 0;
    DIR *d;
    int ret = 0;

    if (stat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return run_file(path, count);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        char **grown;

        if (de->d_name[0] == '.')
            continue;
        grown = realloc(names, (n + 1) * sizeof(*names));
        if (grown == NULL) {
            ret = -1;
            break;
        }
        names = grown;
        if (asprintf(&names[n], "%s/%s", path, de->d_name) < 0) {
            ret = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(*names), compare_names);
    for (size_t i = 0; i < n; i++) {
        if (ret == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
            ret = run_file(names[i], count);
        free(names[i]);
    }
    free(names);
    return ret;
}

int main(int argc, char **argv)
{
    const char *top = getenv("abs_top_srcdir");
    unsigned count = 0;
    char *dir = NULL;
    int ret = 0;

    if (argc > 1) {
        for (int i = 1; i < argc && ret == 0; i++)
            ret = run_path(argv[i], &count);
    } else {
        static const char *const kinds[] = {"corpus", "regressions"};

        if (top == NULL)
            top = ".";
        for (size_t k = 0; k < 2 && ret == 0; k++) {
            if (asprintf(&dir, "%s/tests/fuzz/%s/%s", top, kinds[k], FUZZ_NAME) < 0)
                return 1;
            ret = run_path(dir, &count);
            free(dir);
        }
    }
    if (ret < 0)
        return 1;
    fprintf(stderr, "replay: %s: %u inputs ran\n", FUZZ_NAME, count);
    /* A target with no inputs at all means the corpus was not found: that must not pass silently. */
    return count > 0 ? 0 : 1;
}
