/* The agent's read cycles over a directory of QMP sockets, one after another, for tests/fault_sim.sh:
 *
 *   fault_cycles DIR TIMEOUT_MS PAUSE_MS STOPFILE
 *
 * runs cycles (PAUSE_MS apart) until STOPFILE exists (at most 100000), printing one line per cycle:
 *   cycle N: R read, O ok, F failed, M ms
 * and exits 1 as soon as a cycle takes longer than bal_agent_read's bound (3 timeouts, plus slack for
 * a loaded machine or valgrind), 0 when stopped. Run under ASan or valgrind it also shows that what a
 * killed and restarted balloon-sim did to the agent leaked nothing. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/bal_agent.h"
#include "agent/bal_open.h"
#include "tests/tt_env.h"
#include "tests/tt_time.h"

typedef struct tally {
    unsigned ok, failed;
} tally_t;

static void on_sample(void *opaque, const bal_sample_t *s)
{
    tally_t *t = opaque;
    if (s->state == BAL_STATE_OK)
        t->ok++;
    else if (s->state == BAL_STATE_FAILED)
        t->failed++;
}

int main(int argc, char **argv)
{
    int64_t slack = tt_valgrind() ? 10000 : 1000;
    bal_open_config_t open = {.transport = BAL_TRANSPORT_QMP_DIR};
    bal_agent_config_t config = {
        .polling_interval_s = 1,
        .refresh_interval_s = 1,
    };
    bal_agent_t *agent = NULL;
    bal_error_t err = {0};
    int timeout_ms, pause_ms, ret = 0;

    if (argc != 5) {
        fprintf(stderr, "usage: fault_cycles DIR TIMEOUT_MS PAUSE_MS STOPFILE\n");
        return 2;
    }
    open.qmp_dir = argv[1];
    timeout_ms = atoi(argv[2]);
    pause_ms = atoi(argv[3]);
    config.timeout_ms = timeout_ms;
    if (timeout_ms <= 0 || pause_ms < 0) {
        fprintf(stderr, "fault_cycles: bad timeout or pause\n");
        return 2;
    }
    if (bal_open_agent(&config, &open, &agent, &err) != 0) {
        fprintf(stderr, "fault_cycles: %s\n", err.message);
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int n = 1; n <= 100000 && access(argv[4], F_OK) != 0; n++) {
        tally_t t = {0, 0};
        int64_t start = tt_mono_ms(), took;
        int rc = bal_agent_read(agent, on_sample, &t, &err);

        took = tt_mono_ms() - start;
        printf("cycle %d: %d read, %u ok, %u failed, %lld ms\n", n, rc, t.ok, t.failed, (long long)took);
        if (took > 3 * timeout_ms + slack) {
            fprintf(stderr, "fault_cycles: cycle %d took %lld ms, more than 3 timeouts of %d ms\n", n,
                    (long long)took, timeout_ms);
            ret = 1;
            break;
        }
        if (pause_ms > 0)
            usleep((useconds_t)pause_ms * 1000);
    }
    bal_agent_free(agent);
    return ret;
}
