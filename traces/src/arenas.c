/* arenas.c: 8 threads under malloc load (glibc arenas): small and medium blocks that grow
 * and trim the per-thread arena heaps (mprotect growth, MADV_DONTNEED and shrinking by
 * mprotect(PROT_NONE)), blocks over the mmap threshold (mmap/munmap, mremap through
 * realloc), and blocks handed from one thread to another to be freed there.
 * Build: gcc -O2 -pthread -o arenas arenas.c */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>

#define NT 8
#define SLOTS 64
static void *handoff[NT][SLOTS];
static pthread_barrier_t bar;

static void *work(void *arg) {
    long id = (long)arg;
    unsigned seed = (unsigned)id * 7919u + 1;
    void *keep[SLOTS] = {0};
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 60; i++) {
            seed = seed * 1103515245u + 12345u;
            int slot = (int)(seed >> 8) % SLOTS;
            size_t sz;
            switch ((seed >> 20) % 8) {
            case 0: sz = 300 * 1024; break;                 /* mmap'd chunk */
            case 1: sz = 40 * 1024 + (seed & 0xfff); break; /* arena heap growth */
            default: sz = 16 + (seed >> 4) % 3000; break;
            }
            if (keep[slot] && (seed >> 28) == 3) {
                keep[slot] = realloc(keep[slot], 1500 * 1024); /* mremap of an mmap'd chunk */
                if (!keep[slot]) abort();
                memset(keep[slot], 2, 4096);
                continue;
            }
            free(keep[slot]);
            keep[slot] = malloc(sz);
            if (!keep[slot]) abort();
            memset(keep[slot], (int)id, sz < 8192 ? sz : 8192);
        }
        /* give half of the blocks to the next thread, free what the previous one gave */
        for (int s = 0; s < SLOTS; s += 2) { handoff[id][s] = keep[s]; keep[s] = NULL; }
        pthread_barrier_wait(&bar);
        long from = (id + NT - 1) % NT;
        for (int s = 0; s < SLOTS; s += 2) { free(handoff[from][s]); handoff[from][s] = NULL; }
        pthread_barrier_wait(&bar);
        malloc_trim(0);
    }
    for (int s = 0; s < SLOTS; s++) free(keep[s]);
    return NULL;
}

int main(void) {
    pthread_t t[NT];
    pthread_barrier_init(&bar, NULL, NT);
    for (long i = 0; i < NT; i++) pthread_create(&t[i], NULL, work, (void *)i);
    for (int i = 0; i < NT; i++) pthread_join(t[i], NULL);
    printf("arenas done\n");
    return 0;
}
