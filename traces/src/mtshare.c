/* mtshare.c: threads that change each other's memory: one thread maps a region, others
 * mprotect, madvise and mremap parts of it while the first unmaps and maps again at the
 * same hint, so results depend on the order in which the kernel completed the calls.
 * Also MAP_FIXED replacement by one thread of a range another thread is changing.
 * Build: gcc -O2 -pthread -o mtshare mtshare.c */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PG 4096
#define NPG 64
#define ROUNDS 12
static char *region;
static pthread_barrier_t bar;

static void *side(void *arg) {
    long id = (long)arg;
    for (int r = 0; r < ROUNDS; r++) {
        pthread_barrier_wait(&bar);
        char *base = region;
        for (int k = 0; k < 6; k++) {
            char *p = base + (size_t)((id * 16 + k * 2) % NPG) * PG;
            mprotect(p, PG, (k & 1) ? PROT_READ : PROT_READ | PROT_WRITE);
            madvise(p, PG, MADV_DONTNEED);
            if (k == 3) {
                /* move two pages out and back: another thread may already have unmapped them */
                char *m = mremap(p, 2 * PG, 2 * PG, MREMAP_MAYMOVE);
                if (m != MAP_FAILED) munmap(m, 2 * PG);
            }
        }
        mmap(base + (size_t)(id * 8) * PG, PG, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        pthread_barrier_wait(&bar);
    }
    return NULL;
}

int main(void) {
    pthread_t t[3];
    pthread_barrier_init(&bar, NULL, 4);
    region = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (long i = 0; i < 3; i++) pthread_create(&t[i], NULL, side, (void *)i);
    for (int r = 0; r < ROUNDS; r++) {
        pthread_barrier_wait(&bar);
        /* while the others work on it, replace the middle and map again nearby */
        mmap(region + 20 * PG, 8 * PG, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        char *n = mmap(region + NPG * PG, 4 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        munmap(n, 4 * PG);
        munmap(region + 40 * PG, 4 * PG);
        pthread_barrier_wait(&bar);
        munmap(region, NPG * PG);
        region = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        memset(region, 1, NPG * PG);
    }
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    printf("mtshare done\n");
    return 0;
}
