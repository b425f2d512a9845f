/* The guest's virtio_balloon driver, and the workload its stats describe.
 *
 * Every value is a pure function of (seed, memory size, time since boot), so a guest is reproducible
 * whatever the order and frequency of the requests, and each answer costs O(1) with no history kept.
 * Levels (free memory, caches) wander between random targets drawn at fixed epochs; counters grow at a
 * rate drawn per epoch from a cycle of CYCLE epochs, whose prefix sums give the value at any time. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/vb_clock.h"
#include "virtio/vb_guest.h"

#define STUCK_ANSWERS 3
#define SLOW_DELAY_NS (2 * VB_NS_PER_S)
#define OOM_KILL_EVERY_MS 5000u
#define PAGE_SIZE 4096u
#define CYCLE 16u /* epochs per cycle of counter rates */
#define PPM 1000000u

struct vb_guest {
    uint64_t memory_bytes;
    uint64_t seed;
    int64_t boot_ns;  /* the guest's time 0: counters start from their boot values here */
    unsigned answered; /* requests answered since boot, for the stuck profile */
    vb_guest_profile_t profile;
    bool rebooting; /* reset: the boot time is taken from the next call that knows the time */
};

static const char *const profile_names[] = {
    [VB_GUEST_LINUX] = "linux",
    [VB_GUEST_LEGACY] = "legacy",
    [VB_GUEST_NONE] = "none",
    [VB_GUEST_STUCK] = "stuck",
    [VB_GUEST_EMPTY] = "empty",
    [VB_GUEST_SLOW] = "slow",
    [VB_GUEST_OOM] = "oom",
};

#define PROFILE_COUNT (sizeof(profile_names) / sizeof(profile_names[0]))

int vb_guest_profile_parse(const char *name, vb_guest_profile_t *out)
{
    for (size_t i = 0; i < PROFILE_COUNT; i++) {
        if (strcmp(name, profile_names[i]) == 0) {
            *out = (vb_guest_profile_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *vb_guest_profile_name(vb_guest_profile_t profile)
{
    return (unsigned)profile < PROFILE_COUNT ? profile_names[profile] : NULL;
}

vb_guest_t *vb_guest_new(vb_guest_profile_t profile, uint64_t memory_bytes, uint64_t seed)
{
    vb_guest_t *guest = calloc(1, sizeof(*guest));

    if (!guest)
        return NULL;
    guest->profile = profile;
    guest->memory_bytes = memory_bytes;
    guest->seed = seed;
    return guest;
}

void vb_guest_free(vb_guest_t *guest)
{
    free(guest);
}

static void boot_if_rebooting(vb_guest_t *guest, int64_t now_ns)
{
    if (guest->rebooting) {
        guest->boot_ns = now_ns;
        guest->rebooting = false;
    }
}

int64_t vb_guest_on_request(vb_guest_t *guest, int64_t now_ns)
{
    boot_if_rebooting(guest, now_ns);
    switch (guest->profile) {
    case VB_GUEST_NONE:
        return -1;
    case VB_GUEST_STUCK:
        if (guest->answered >= STUCK_ANSWERS)
            return -1;
        guest->answered++;
        return 0;
    case VB_GUEST_SLOW:
        return SLOW_DELAY_NS;
    case VB_GUEST_LINUX:
    case VB_GUEST_LEGACY:
    case VB_GUEST_EMPTY:
    case VB_GUEST_OOM:
        break;
    }
    return 0;
}

void vb_guest_reset(vb_guest_t *guest)
{
    guest->answered = 0;
    guest->rebooting = true;
}

/* splitmix64's finalizer: a cheap, well-mixed hash. */
static uint64_t mix(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* The random draw number k of the series `salt` of this guest. */
static uint64_t draw(const vb_guest_t *guest, unsigned salt, uint64_t k)
{
    return mix(guest->seed ^ mix(((uint64_t)salt << 48) ^ k));
}

enum salt {
    SALT_USED, SALT_CACHE, SALT_BOOT, SALT_SWAP_IN, SALT_SWAP_OUT, SALT_MAJOR, SALT_MINOR,
    SALT_STALLS, SALT_ASYNC_SCAN, SALT_DIRECT_SCAN,
};

/* A level in parts per million of memory, moving linearly from one random target in [lo, hi] to the
 * next over each epoch. */
static uint64_t wander_ppm(const vb_guest_t *guest, unsigned salt, uint64_t t_ms, uint64_t epoch_ms,
                           uint64_t lo, uint64_t hi)
{
    uint64_t k = t_ms / epoch_ms;
    uint64_t a = lo + draw(guest, salt, k) % (hi - lo + 1);
    uint64_t b = lo + draw(guest, salt, k + 1) % (hi - lo + 1);
    uint64_t in = t_ms % epoch_ms;

    return b >= a ? a + (b - a) * in / epoch_ms : a - (a - b) * in / epoch_ms;
}

/* Events per second during epoch k of the cycle: in [min, max] when busy, else 0. Epochs are busy
 * one in busy_one_in, and at least one epoch of each cycle is, so a rare counter still moves. */
static uint64_t rate(const vb_guest_t *guest, unsigned salt, unsigned k, uint64_t min, uint64_t max,
                     unsigned busy_one_in)
{
    uint64_t d = draw(guest, salt, k);

    if (d % busy_one_in != 0 && k != draw(guest, salt, CYCLE) % CYCLE)
        return 0;
    return min + (d >> 8) % (max - min + 1);
}

/* A counter at t_ms since boot: the integral of the rates, which are never negative, so it never
 * goes back. epoch_s is whole seconds so that each whole epoch adds an integer. */
static uint64_t counter(const vb_guest_t *guest, unsigned salt, uint64_t t_ms, uint64_t epoch_s,
                        uint64_t min, uint64_t max, unsigned busy_one_in)
{
    uint64_t epoch_ms = epoch_s * 1000;
    uint64_t e = t_ms / epoch_ms;
    unsigned pos = (unsigned)(e % CYCLE);
    uint64_t per_cycle = 0, before = 0, current = 0;

    for (unsigned k = 0; k < CYCLE; k++) {
        uint64_t r = rate(guest, salt, k, min, max, busy_one_in);

        per_cycle += r;
        if (k < pos)
            before += r;
        else if (k == pos)
            current = r;
    }
    return ((e / CYCLE) * per_cycle + before) * epoch_s + current * (t_ms % epoch_ms) / 1000;
}

static uint64_t share(uint64_t pages, uint64_t ppm)
{
    return pages / PPM * ppm + pages % PPM * ppm / PPM;
}

/* Every stat of a Linux guest, by tag, at t_ms since boot. */
static void workload(const vb_guest_t *guest, uint64_t t_ms, uint64_t v[VB_STAT_COUNT])
{
    uint64_t pages = guest->memory_bytes / PAGE_SIZE;
    /* Anonymous memory, page cache and the kernel's own share never add up to more than 93%. */
    uint64_t used = share(pages, wander_ppm(guest, SALT_USED, t_ms, 47000, 200000, 650000));
    uint64_t cache = share(pages, wander_ppm(guest, SALT_CACHE, t_ms, 83000, 50000, 250000));
    uint64_t kernel = share(pages, 30000);
    uint64_t free_pages = pages - used - cache - kernel;
    uint64_t async_scans = counter(guest, SALT_ASYNC_SCAN, t_ms, 20, 200, 5000, 3);
    uint64_t direct_scans = counter(guest, SALT_DIRECT_SCAN, t_ms, 40, 10, 400, 6);

    v[VB_STAT_SWAP_IN] = counter(guest, SALT_SWAP_IN, t_ms, 30, 1, 64, 5) * PAGE_SIZE;
    v[VB_STAT_SWAP_OUT] = counter(guest, SALT_SWAP_OUT, t_ms, 30, 4, 256, 4) * PAGE_SIZE;
    v[VB_STAT_MAJOR_FAULTS] = 200 + draw(guest, SALT_BOOT, 0) % 800 +
                              counter(guest, SALT_MAJOR, t_ms, 10, 0, 5, 1);
    v[VB_STAT_MINOR_FAULTS] = 150000 + draw(guest, SALT_BOOT, 1) % 150000 +
                              counter(guest, SALT_MINOR, t_ms, 10, 50, 2000, 1);
    v[VB_STAT_FREE_MEMORY] = free_pages * PAGE_SIZE;
    v[VB_STAT_TOTAL_MEMORY] = guest->memory_bytes;
    /* Most of the page cache can be reclaimed, so available is free plus 90% of it. */
    v[VB_STAT_AVAILABLE_MEMORY] = (free_pages + cache / 10 * 9) * PAGE_SIZE;
    v[VB_STAT_DISK_CACHES] = cache * PAGE_SIZE;
    v[VB_STAT_HTLB_PGALLOC] = 0; /* no hugetlbfs in use */
    v[VB_STAT_HTLB_PGFAIL] = 0;
    /* Only the oom profile's kernel kills, at a steady pace: a counter an alert can see move. */
    v[VB_STAT_OOM_KILLS] = guest->profile == VB_GUEST_OOM ? t_ms / OOM_KILL_EVERY_MS : 0;
    v[VB_STAT_ALLOC_STALLS] = counter(guest, SALT_STALLS, t_ms, 60, 1, 3, 8) / 60;
    v[VB_STAT_ASYNC_SCANS] = async_scans;
    v[VB_STAT_DIRECT_SCANS] = direct_scans;
    /* kswapd and direct reclaim free most, never more, of what they scan. */
    v[VB_STAT_ASYNC_RECLAIMS] = async_scans / 4 * 3;
    v[VB_STAT_DIRECT_RECLAIMS] = direct_scans / 2;
}

size_t vb_guest_fill_buffer(vb_guest_t *guest, int64_t now_ns, uint8_t *buf, size_t cap)
{
    uint64_t values[VB_STAT_COUNT];
    unsigned count;
    size_t len = 0;
    int64_t since_boot;

    boot_if_rebooting(guest, now_ns);
    switch (guest->profile) {
    case VB_GUEST_NONE:
    case VB_GUEST_EMPTY:
        return 0;
    case VB_GUEST_LEGACY:
        count = VB_STATS_LEGACY; /* the six stats of QEMU's stats document */
        break;
    case VB_GUEST_LINUX:
    case VB_GUEST_STUCK:
    case VB_GUEST_SLOW:
    case VB_GUEST_OOM:
    default:
        count = VB_STAT_COUNT;
        break;
    }
    since_boot = now_ns > guest->boot_ns ? now_ns - guest->boot_ns : 0;
    workload(guest, (uint64_t)since_boot / (uint64_t)VB_NS_PER_MS, values);
    /* Linux sends its stats in tag order; only whole entries that fit are written. */
    for (unsigned tag = 0; tag < count && len + VB_STAT_WIRE_SIZE <= cap; tag++) {
        vb_stat_encode(buf + len, (uint16_t)tag, values[tag]);
        len += VB_STAT_WIRE_SIZE;
    }
    return len;
}
