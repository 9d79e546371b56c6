/* mtchurn.c: 4 threads that mmap/munmap/mremap/mprotect their own memory in tight loops,
 * in one address space, so that the kernel reuses the addresses one thread frees for
 * another thread's next mapping while strace shows the two calls overlapping.
 * Two detached threads are still looping when main returns: their calls are in flight
 * while the preloaded destructor reads /proc/self/maps.
 * Build: gcc -O2 -pthread -o mtchurn mtchurn.c */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define WORKERS 4
#define ROUNDS 25
static volatile int stop;

static void *churn(void *arg) {
    long id = (long)arg;
    size_t pg = 4096;
    for (int r = 0; r < ROUNDS; r++) {
        size_t n = (size_t)(1 + (r + id) % 5) * pg;
        char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) abort();
        memset(p, (int)id, n);
        char *q = mremap(p, n, n + 2 * pg, MREMAP_MAYMOVE);
        if (q == MAP_FAILED) abort();
        q[n] = 1;
        if (r % 3 == 0) mprotect(q + n, pg, PROT_READ);   /* split off a read-only page */
        if (r % 4 == 1 && r % 3 != 0) {
            char *s = mremap(q, n + 2 * pg, pg, 0);   /* shrink in place */
            munmap(s, pg);
        } else {
            munmap(q + pg, pg);                        /* punch a hole, then each side */
            munmap(q, pg);                             /* (the hole may be reused at once) */
            munmap(q + 2 * pg, n);
        }
    }
    return NULL;
}

static void *forever(void *arg) {
    long id = (long)arg;
    while (!stop) {
        char *p = mmap(NULL, 8192 * (size_t)id, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) abort();
        p[0] = 1;
        munmap(p, 8192 * (size_t)id);
    }
    return NULL;
}

int main(void) {
    pthread_t t[WORKERS], d[2];
    for (long i = 0; i < 2; i++) {
        pthread_create(&d[i], NULL, forever, (void *)(i + 1));
        pthread_detach(d[i]);
    }
    for (long i = 0; i < WORKERS; i++) pthread_create(&t[i], NULL, churn, (void *)i);
    for (int i = 0; i < WORKERS; i++) pthread_join(t[i], NULL);
    printf("mtchurn done\n");
    return 0;   /* the detached threads are still mapping while maps is dumped */
}
