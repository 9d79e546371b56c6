/* mremap.c: mremap-heavy workload.
 *  - realloc of large (mmap'd) chunks: glibc grows/shrinks them with mremap(MREMAP_MAYMOVE)
 *  - direct mremap: in-place grow (into a hole made free on purpose), in-place shrink,
 *    grow that fails without MREMAP_MAYMOVE (ENOMEM), MREMAP_MAYMOVE move,
 *    MREMAP_FIXED onto an existing mapping (which it replaces), moving parts of a mapping
 *    (splits it), same-size no-op, growing a middle VMA that must move (leaves a hole),
 *    a remap across that hole (fails with EFAULT), MREMAP_DONTUNMAP (anon private),
 *    old_size 0 duplication of a MAP_SHARED anonymous mapping, growing it by moving.
 * Build: gcc -O2 -o mremap mremap.c */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096UL
#define CHECK(p, what) do { if ((p) == MAP_FAILED) { printf("%s: %s\n", what, strerror(errno)); } } while (0)

static void fill(char *p, size_t n, int v) { for (size_t i = 0; i < n; i += PG) p[i] = (char)v; }

int main(void) {
    /* 1. realloc growth of large buffers */
    size_t sz = 256 * 1024;
    char *buf = malloc(sz);
    memset(buf, 1, sz);
    for (int i = 0; i < 6; i++) {
        sz *= 2;                                   /* up to 16 MiB */
        buf = realloc(buf, sz);
        if (!buf) abort();
        fill(buf, sz, i);
    }
    buf = realloc(buf, 3 * 1024 * 1024 + 123);     /* shrink */
    char *buf2 = malloc(1 << 20);
    buf2 = realloc(buf2, 5 << 20);
    free(buf);
    free(buf2);

    /* 2. in-place grow: reserve 64 pages, release the upper 48, grow into them */
    char *a = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(a, "mmap a");
    munmap(a + 16 * PG, 48 * PG);
    fill(a, 16 * PG, 2);
    char *r = mremap(a, 16 * PG, 40 * PG, 0);      /* grows in place */
    CHECK(r, "grow in place");
    fill(a, 40 * PG, 3);
    r = mremap(a, 40 * PG, 24 * PG, 0);            /* shrinks in place */
    CHECK(r, "shrink in place");

    /* 3. grow blocked by a neighbour: fails without MAYMOVE, moves with it */
    char *blk = mmap(a + 24 * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(blk, "blocker");
    r = mremap(a, 24 * PG, 32 * PG, 0);            /* ENOMEM expected */
    if (r == MAP_FAILED) printf("grow without MAYMOVE: %s (expected)\n", strerror(errno));
    char *m = mremap(a, 24 * PG, 32 * PG, MREMAP_MAYMOVE);
    CHECK(m, "maymove");
    fill(m, 32 * PG, 4);

    /* 4. MREMAP_FIXED onto an existing mapping (replaces it) */
    char *target = mmap(NULL, 16 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(target, "target");
    char *f = mremap(m, 8 * PG, 8 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, target + 4 * PG);  /* moves the first 8 pages of m */
    CHECK(f, "fixed");
    char *f2 = mremap(m + 8 * PG, 8 * PG, 12 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, target + 16 * PG + 4 * PG); /* moves+grows a middle part */
    CHECK(f2, "fixed grow");

    /* 5. move the middle of a mapping with different protections around it */
    char *c = mmap(NULL, 30 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(c, "mmap c");
    fill(c, 30 * PG, 5);
    mprotect(c + 10 * PG, 10 * PG, PROT_READ);
    char *same = mremap(c + 10 * PG, 10 * PG, 10 * PG, MREMAP_MAYMOVE);  /* same size: no-op */
    CHECK(same, "same size");
    char *mid = mremap(c + 10 * PG, 10 * PG, 15 * PG, MREMAP_MAYMOVE);   /* neighbour above: moves */
    CHECK(mid, "move middle");
    r = mremap(c + 5 * PG, 10 * PG, 20 * PG, MREMAP_MAYMOVE);           /* spans a hole: EFAULT */
    if (r == MAP_FAILED) printf("mremap across hole: %s (expected)\n", strerror(errno));

    /* 6. MREMAP_DONTUNMAP (Linux >= 5.7): source stays mapped, empty */
    char *d = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(d, "mmap d");
    fill(d, 8 * PG, 6);
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
    char *du = mremap(d, 8 * PG, 8 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);  /* new_address is read: pass a valid hint */
    if (du == MAP_FAILED) printf("DONTUNMAP: %s\n", strerror(errno));
    else printf("DONTUNMAP: d[0]=%d du[0]=%d\n", d[0], du[0]);

    /* 7. old_size 0 on a MAP_SHARED anonymous mapping: a second view of the same pages */
    char *s = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(s, "mmap s");
    s[0] = 42;
    char *s2 = mremap(s, 0, 4 * PG, MREMAP_MAYMOVE);
    if (s2 == MAP_FAILED) printf("dup: %s\n", strerror(errno));
    else printf("dup view: s2[0]=%d\n", s2[0]);

    /* 8. grow a MAP_SHARED anon mapping by moving it */
    char *s3 = mremap(s, 4 * PG, 6 * PG, MREMAP_MAYMOVE);
    CHECK(s3, "grow shared");

    printf("mremap done\n");
    return 0;
}
