/* An in-process transport for the fault tests and the soak: domains "vm-NNNNNN" whose QMP commands
 * are answered by the real device model (vb_device, a Linux guest profile) on a manual clock, so
 * thousands of guests and hundreds of thousands of cycles cost no sockets and no sleeping. The set of
 * running domains is changed between cycles; failures can be injected at random (seeded). Every
 * command that reaches it is checked against the allow-list's contract (an independent reading), so
 * any test that runs an agent over it also proves that nothing else leaves the agent.
 * Thread-safe (one lock): the agent's pool threads call execute concurrently. */
#ifndef FAULT_FAKE_H
#define FAULT_FAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/bal_clock.h"
#include "agent/bal_transport.h"

typedef struct ff ff_t;

/* Room for domain ids 0 .. max_ids-1. Aborts on ENOMEM. */
ff_t *ff_new(size_t max_ids);
/* The transport to hand to bal_agent_new_with_transport, which takes it; ff_free frees the rest
 * afterwards (the transport's own free does nothing). */
bal_transport_t *ff_transport(ff_t *f);
void ff_free(ff_t *f);

/* The agent's view of the manual clock (wall time starts at 1700000000 s). */
const bal_clock_t *ff_clock(ff_t *f);
/* Moves the clock forward and lets every running device do what is due. */
void ff_advance_s(ff_t *f, int64_t seconds);

/* Running domains are exactly the ids first .. first+count-1. A domain that starts gets a new device
 * (a new instance, polling off as QEMU starts it); one that stops loses its device. */
void ff_set_running(ff_t *f, size_t first, size_t count);
size_t ff_running(const ff_t *f);

/* Each execute fails with probability permille/1000, in one of the ways a transport or QEMU fails
 * (timeout, lost connection, garbage reply, QMP error, domain gone): seeded, so runs repeat. */
void ff_set_failures(ff_t *f, unsigned permille, unsigned seed);

/* The domain name for an id, as listed ("vm-000042"). buf must hold 16 bytes. */
void ff_name(size_t id, char *buf);

/* The check every command passes here, for other fakes (a QMP socket server) to use: true when
 * command is exactly one of the commands the agent may send, read with yajl's tree parser
 * independently of the agent's allow-list. */
bool ff_command_allowed(const char *command);

typedef struct ff_counts {
    unsigned long lists, executes, failures_injected, refused; /* refused: broke the contract */
} ff_counts_t;
void ff_counts(ff_t *f, ff_counts_t *out);

#endif
