/*
 * dirty.c: the Tandem "dirty" test guest.
 *
 * A freestanding multiboot kernel that needs nothing but QEMU's -kernel:
 * it prints "TANDEM-DIRTY-READY" on the first serial port (0x3f8), then
 * writes, forever, one word into every 4 KiB page of the RAM between 2 MiB
 * and the end of the upper memory block the loader reported (mem_upper),
 * so that live migration always has real dirty memory to move.  The word
 * written changes on every pass, so the pages are never zero pages.
 *
 * About every 2^31 TSC ticks (roughly a second) it prints
 * "TANDEM-DIRTY-ALIVE pass=N", so a test can tell the guest still runs,
 * e.g. after a migration.
 *
 * Kernel command line (-append), words separated by spaces:
 *   dirty=MB   dirty at most MB MiB (starting at 2 MiB) instead of all RAM
 *   quiet      no ALIVE lines
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#define COM1 0x3f8
#define MB_BOOTLOADER_MAGIC 0x2BADB002u
#define MB_INFO_MEMORY (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)
#define DIRTY_START (2u << 20)
#define PAGE_SIZE 4096u

struct multiboot_info {
    u32 flags;
    u32 mem_lower;      /* KiB below 1 MiB */
    u32 mem_upper;      /* KiB above 1 MiB, first contiguous block */
    u32 boot_device;
    u32 cmdline;        /* physical address of a NUL terminated string */
};

static inline void
outb(u16 port, u8 val)
{
    __asm__ volatile("outb %0, %1" : : "a"(val), "Nd"(port));
}

static inline u8
inb(u16 port)
{
    u8 val;
    __asm__ volatile("inb %1, %0" : "=a"(val) : "Nd"(port));
    return val;
}

static inline u64
rdtsc(void)
{
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((u64)hi << 32) | lo;
}

static void
serialInit(void)
{
    outb(COM1 + 1, 0x00);   /* no interrupts */
    outb(COM1 + 3, 0x80);   /* DLAB on */
    outb(COM1 + 0, 0x01);   /* divisor 1: 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);   /* 8N1, DLAB off */
    outb(COM1 + 2, 0xC7);   /* FIFO on, cleared, 14 byte threshold */
    outb(COM1 + 4, 0x03);   /* DTR, RTS */
}

static void
serialPutc(char c)
{
    u32 spins = 0;

    /* wait for the transmit holding register, but never forever */
    while (!(inb(COM1 + 5) & 0x20) && ++spins < 1000000)
        ;
    outb(COM1, (u8)c);
}

static void
serialPuts(const char *s)
{
    for (; *s; s++) {
        if (*s == '\n')
            serialPutc('\r');
        serialPutc(*s);
    }
}

static void
serialPutu(u32 v)
{
    char buf[11];
    int i = sizeof(buf) - 1;

    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i > 0);
    serialPuts(&buf[i]);
}

/* Find "KEY" as a whole word of @cmdline; return what follows it. */
static const char *
cmdlineFind(const char *cmdline, const char *key)
{
    const char *p = cmdline;

    while (p && *p) {
        const char *k = key;
        const char *q = p;

        while (*k && *q == *k) {
            k++;
            q++;
        }
        if (!*k && (p == cmdline || p[-1] == ' ') &&
            (*q == '\0' || *q == ' ' || *q == '='))
            return q;
        p++;
    }
    return 0;
}

static u32
parseu(const char *s)
{
    u32 v = 0;

    while (*s >= '0' && *s <= '9')
        v = v * 10 + (u32)(*s++ - '0');
    return v;
}

void dirty_main(u32 magic, const struct multiboot_info *mbi);

void
dirty_main(u32 magic, const struct multiboot_info *mbi)
{
    const char *cmdline = "";
    const char *arg;
    u32 end;
    u32 pass = 0;
    int quiet = 0;
    u32 lastTick;

    serialInit();

    if (magic != MB_BOOTLOADER_MAGIC || !(mbi->flags & MB_INFO_MEMORY)) {
        serialPuts("TANDEM-DIRTY-ERROR no multiboot memory information\n");
        return;
    }
    if (mbi->flags & MB_INFO_CMDLINE && mbi->cmdline)
        cmdline = (const char *)mbi->cmdline;

    /* mem_upper is in KiB and starts at 1 MiB; stay below 4 GiB */
    if (mbi->mem_upper >= (0xFFFFFFFFu >> 10) - 1024)
        end = 0xFFFFF000u;
    else
        end = (1u << 20) + (mbi->mem_upper << 10);
    end &= ~(PAGE_SIZE - 1);

    if ((arg = cmdlineFind(cmdline, "dirty")) && *arg == '=') {
        u32 mb = parseu(arg + 1);
        if (mb && mb < ((end - DIRTY_START) >> 20))
            end = DIRTY_START + (mb << 20);
    }
    if (cmdlineFind(cmdline, "quiet"))
        quiet = 1;

    if (end <= DIRTY_START) {
        serialPuts("TANDEM-DIRTY-ERROR less than 2 MiB of RAM\n");
        return;
    }

    serialPuts("\nTANDEM-DIRTY-READY mem_upper_kib=");
    serialPutu(mbi->mem_upper);
    serialPuts(" dirty_kib=");
    serialPutu((end - DIRTY_START) >> 10);
    serialPuts("\n");

    lastTick = (u32)(rdtsc() >> 31);
    for (;;) {
        volatile u32 *page;
        u32 addr;
        u32 tick;

        pass++;
        for (addr = DIRTY_START; addr < end; addr += PAGE_SIZE) {
            page = (volatile u32 *)addr;
            page[0] = pass;
            page[1] = addr ^ 0x5A5A5A5Au;
        }

        tick = (u32)(rdtsc() >> 31);
        if (!quiet && tick != lastTick) {
            lastTick = tick;
            serialPuts("TANDEM-DIRTY-ALIVE pass=");
            serialPutu(pass);
            serialPuts("\n");
        }
    }
}
