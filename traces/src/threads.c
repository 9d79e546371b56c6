/* threads.c: 4 threads doing malloc/free of varied sizes, then join and exit.
 * Exercises: clone/clone3 with CLONE_VM (thread stacks: mmap + mprotect guard page),
 * glibc per-thread arenas (64 MiB reserve mmap, munmap trimming, mprotect growth),
 * mmap'd chunks (2 MiB; 200 KiB until the dynamic mmap threshold rises), munmap on free.
 * Build: gcc -O2 -pthread -o threads threads.c */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS 4

static void *work(void *arg) {
    long id = (long)arg;
    size_t sizes[] = {24, 100, 1000, 4000, 200 * 1024, 2 * 1024 * 1024, 64 * 1024, 300 * 1024};
    void *keep[16] = {0};
    unsigned long sum = 0;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 8; i++) {
            size_t sz = sizes[(i + id + round) % 8] + (size_t)id * 16;
            char *p = malloc(sz);
            if (!p) abort();
            memset(p, (int)(id + i), sz);
            sum += (unsigned char)p[sz - 1];
            int slot = (i + round) % 16;
            free(keep[slot]);
            keep[slot] = p;
        }
        /* many small allocations: grows the thread arena's heap (mprotect) */
        void *small[200];
        for (int i = 0; i < 200; i++) { small[i] = malloc(512 + i * 8); memset(small[i], 1, 512); }
        for (int i = 0; i < 200; i++) free(small[i]);
    }
    for (int i = 0; i < 16; i++) free(keep[i]);
    return (void *)sum;
}

int main(void) {
    pthread_t t[NTHREADS];
    char *mainbuf = malloc(2 * 1024 * 1024);   /* main arena mmap'd chunk */
    memset(mainbuf, 7, 2 * 1024 * 1024);
    for (long i = 0; i < NTHREADS; i++)
        if (pthread_create(&t[i], NULL, work, (void *)i) != 0) { perror("pthread_create"); return 1; }
    unsigned long total = 0;
    for (int i = 0; i < NTHREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (unsigned long)r;
    }
    free(mainbuf);
    printf("threads done: %lu\n", total);
    return 0;
}
