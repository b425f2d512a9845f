/* The benchmark guest: the smallest thing that makes a TCG domain behave, for a memory monitor,
 * like a Linux guest with the virtio_balloon driver, at almost no CPU cost to the host.
 *
 * It finds the virtio balloon (legacy virtio-pci, as QEMU's transitional virtio-balloon-pci shows
 * itself), negotiates the stats queue only, hands QEMU a stats buffer, and then sleeps (hlt). Each
 * time QEMU's polling timer returns the buffer (an interrupt), it fills it with fresh figures and
 * hands it back: QEMU's guest-stats and last-update then advance as with a real guest. Between
 * polls nothing runs, so a hundred of these cost the host next to nothing.
 *
 * Built freestanding for i386 (gcc -m32 -ffreestanding); no libc. */
#include <stddef.h>
#include <stdint.h>

void bg_main(void);
void bg_irq(void);
void bg_idle(void);

#define BARRIER() __asm__ volatile("" ::: "memory")

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint16_t inw(uint16_t port)
{
    uint16_t v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

/* ---- PCI configuration space, mechanism #1 ---- */

static uint32_t pci_read(unsigned dev, unsigned reg)
{
    outl(0xCF8, 0x80000000u | (dev << 11) | (reg & 0xFC));
    return inl(0xCFC);
}

static void pci_write(unsigned dev, unsigned reg, uint32_t v)
{
    outl(0xCF8, 0x80000000u | (dev << 11) | (reg & 0xFC));
    outl(0xCFC, v);
}

/* ---- legacy virtio-pci ---- */

#define VIRTIO_PCI_HOST_FEATURES 0x00
#define VIRTIO_PCI_GUEST_FEATURES 0x04
#define VIRTIO_PCI_QUEUE_PFN 0x08
#define VIRTIO_PCI_QUEUE_NUM 0x0C
#define VIRTIO_PCI_QUEUE_SEL 0x0E
#define VIRTIO_PCI_QUEUE_NOTIFY 0x10
#define VIRTIO_PCI_STATUS 0x12
#define VIRTIO_PCI_ISR 0x13

#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4

#define BALLOON_F_STATS_VQ 1
#define STATS_QUEUE 2
#define MAX_QUEUE 256

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct vring_used_elem {
    uint32_t id;
    uint32_t len;
};

/* The stats wire format: packed {le16 tag; le64 val}. */
struct balloon_stat {
    uint16_t tag;
    uint64_t val;
} __attribute__((packed));

enum {
    S_SWAP_IN,
    S_SWAP_OUT,
    S_MAJFLT,
    S_MINFLT,
    S_MEMFREE,
    S_MEMTOT,
    S_AVAIL,
    S_CACHES,
    S_HTLB_PGALLOC,
    S_HTLB_PGFAIL,
    S_COUNT
};

/* The legacy ring for up to MAX_QUEUE entries: descriptors, then the available ring, then the used
 * ring on the next 4 KiB page. */
static uint8_t ring[3 * 4096] __attribute__((aligned(4096)));
static struct balloon_stat stats[S_COUNT];

static struct {
    uint16_t io;
    unsigned qsize;
    volatile struct vring_desc *desc;
    volatile uint16_t *avail; /* flags, idx, ring[] */
    volatile uint16_t *used;  /* flags, idx, then elements */
    uint16_t avail_idx;
    uint16_t last_used;
    uint64_t answers;
} bg;

static void fill_stats(void)
{
    const uint64_t mib = 1024 * 1024;
    uint64_t n = bg.answers++;
    uint64_t wobble = (n * 7919) % 16; /* moves free memory a little at each answer */

    stats[S_SWAP_IN] = (struct balloon_stat){S_SWAP_IN, 0};
    stats[S_SWAP_OUT] = (struct balloon_stat){S_SWAP_OUT, 0};
    stats[S_MAJFLT] = (struct balloon_stat){S_MAJFLT, 3 * n};
    stats[S_MINFLT] = (struct balloon_stat){S_MINFLT, 1000 + 250 * n};
    stats[S_MEMFREE] = (struct balloon_stat){S_MEMFREE, (24 + wobble) * mib};
    stats[S_MEMTOT] = (struct balloon_stat){S_MEMTOT, 56 * mib};
    stats[S_AVAIL] = (struct balloon_stat){S_AVAIL, (36 + wobble) * mib};
    stats[S_CACHES] = (struct balloon_stat){S_CACHES, 8 * mib};
    stats[S_HTLB_PGALLOC] = (struct balloon_stat){S_HTLB_PGALLOC, 0};
    stats[S_HTLB_PGFAIL] = (struct balloon_stat){S_HTLB_PGFAIL, 0};
}

/* Gives the stats buffer (descriptor 0, device-readable) back to the device. */
static void give_buffer(void)
{
    fill_stats();
    bg.desc[0].addr = (uint32_t)(uintptr_t)stats;
    bg.desc[0].len = sizeof(stats);
    bg.desc[0].flags = 0;
    bg.desc[0].next = 0;
    bg.avail[2 + bg.avail_idx % bg.qsize] = 0;
    BARRIER();
    bg.avail_idx++;
    bg.avail[1] = bg.avail_idx;
    BARRIER();
    outw(bg.io + VIRTIO_PCI_QUEUE_NOTIFY, STATS_QUEUE);
}

void bg_irq(void)
{
    if (bg.io != 0) {
        (void)inb(bg.io + VIRTIO_PCI_ISR); /* reading acknowledges and lowers the line */
        BARRIER();
        while (bg.last_used != bg.used[1]) {
            bg.last_used++;
            give_buffer();
        }
    }
    outb(0xA0, 0x20); /* EOI to both 8259s */
    outb(0x20, 0x20);
}

static void pic_init(unsigned irq)
{
    outb(0x20, 0x11); /* ICW1: init, ICW4 follows */
    outb(0xA0, 0x11);
    outb(0x21, 0x20); /* ICW2: vectors 0x20.. and 0x28.. */
    outb(0xA1, 0x28);
    outb(0x21, 0x04); /* ICW3: slave on IRQ2 */
    outb(0xA1, 0x02);
    outb(0x21, 0x01); /* ICW4: 8086 mode */
    outb(0xA1, 0x01);
    uint16_t mask = (uint16_t)~((1u << 2) | (1u << irq)); /* only the cascade and our line */
    outb(0x21, (uint8_t)mask);
    outb(0xA1, (uint8_t)(mask >> 8));
}

static int find_balloon(unsigned *dev_out)
{
    for (unsigned dev = 0; dev < 32; dev++) {
        uint32_t id = pci_read(dev, 0x00);
        if ((id & 0xFFFF) == 0x1AF4 && (id >> 16) == 0x1002) { /* legacy virtio balloon */
            *dev_out = dev;
            return 0;
        }
    }
    return -1;
}

void bg_main(void)
{
    unsigned dev;

    for (size_t i = 0; i < sizeof(ring); i++)
        ring[i] = 0;
    if (find_balloon(&dev) != 0)
        return; /* no balloon: halt, like a guest without the driver */

    uint32_t bar0 = pci_read(dev, 0x10);
    if ((bar0 & 1) == 0)
        return;
    bg.io = (uint16_t)(bar0 & ~3u);
    pci_write(dev, 0x04, pci_read(dev, 0x04) | 0x5); /* I/O space and bus mastering */
    unsigned irq = pci_read(dev, 0x3C) & 0xFF;
    if (irq == 0 || irq > 15)
        return;

    outb(bg.io + VIRTIO_PCI_STATUS, 0);
    outb(bg.io + VIRTIO_PCI_STATUS, STATUS_ACKNOWLEDGE);
    outb(bg.io + VIRTIO_PCI_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    if ((inl(bg.io + VIRTIO_PCI_HOST_FEATURES) & (1u << BALLOON_F_STATS_VQ)) == 0)
        return;
    outl(bg.io + VIRTIO_PCI_GUEST_FEATURES, 1u << BALLOON_F_STATS_VQ);

    outw(bg.io + VIRTIO_PCI_QUEUE_SEL, STATS_QUEUE);
    bg.qsize = inw(bg.io + VIRTIO_PCI_QUEUE_NUM);
    if (bg.qsize == 0 || bg.qsize > MAX_QUEUE)
        return;
    bg.desc = (volatile struct vring_desc *)ring;
    bg.avail = (volatile uint16_t *)(ring + 16 * bg.qsize);
    size_t used_offset = (16 * bg.qsize + 2 * (3 + bg.qsize) + 4095) & ~(size_t)4095;
    bg.used = (volatile uint16_t *)(ring + used_offset);
    outl(bg.io + VIRTIO_PCI_QUEUE_PFN, (uint32_t)(uintptr_t)ring >> 12);

    pic_init(irq);
    outb(bg.io + VIRTIO_PCI_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK);
    give_buffer(); /* the first stats, as Linux's driver sends at probe */

    for (;;)
        bg_idle();
}
