/* See tt_spawn.h. */
#include "config.h"

#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/tt_spawn.h"
#include "tests/tt_time.h"

void tt_spawn_find(char *out, size_t cap, const char *first, const char *second)
{
    out[0] = '\0';
    if (first != NULL && access(first, X_OK) == 0)
        snprintf(out, cap, "%s", first);
    else if (second != NULL && access(second, X_OK) == 0)
        snprintf(out, cap, "%s", second);
}

const char *tt_spawn_sim(void)
{
    static char path[512];
    static bool looked;

    if (!looked) {
        const char *top = getenv("abs_top_builddir");
        char built[512] = "";

        if (top != NULL)
            snprintf(built, sizeof(built), "%s/virtio/balloon-sim", top);
        tt_spawn_find(path, sizeof(path), built, "virtio/balloon-sim");
        looked = true;
    }
    return path[0] != '\0' ? path : NULL;
}

void tt_spawn_need_sim(void)
{
    if (tt_spawn_sim() == NULL)
        skip();
}

pid_t tt_spawn_until_ready(char *const argv[], int timeout_ms)
{
    char buf[4096];
    size_t have = 0;
    int fds[2];
    int64_t deadline = tt_mono_ms() + timeout_ms;
    pid_t pid;

    buf[0] = '\0';
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    while (have < sizeof(buf) - 1) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int64_t left = deadline - tt_mono_ms();
        ssize_t n;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) /* a negative timeout would wait for ever */
            break;
        n = read(fds[0], buf + have, sizeof(buf) - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        if (strstr(buf, "ready") != NULL) {
            close(fds[0]); /* balloon-sim says nothing more that we need */
            return pid;
        }
    }
    close(fds[0]);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("'%s' did not say ready: %s", argv[0], buf);
    return -1;
}

void tt_spawn_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}
