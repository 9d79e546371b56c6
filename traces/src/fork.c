/* fork.c: fork WITHOUT exec. The parent maps anonymous private and MAP_SHARED anonymous
 * memory and writes to it, marks one range MADV_DONTFORK and one MADV_WIPEONFORK, then
 * forks 2 children that run concurrently with each other and with the parent. Each child
 * maps, mprotects and unmaps something of its own, COW-writes and partly mprotects/unmaps
 * inherited mappings, writes to the shared mapping and exits normally (exit(), so the
 * maps dump destructor runs). The parent changes its own mappings meanwhile, waits for
 * both, makes a last change and exits.
 * Build: gcc -O2 -o fork fork.c */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096

static void child(int n, char *priv, char *shared) {
    /* own mappings */
    char *a = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED) _exit(10);
    memset(a, n, 16 * PG);
    mprotect(a + 4 * PG, 4 * PG, PROT_READ);           /* split into 3 */
    munmap(a + 12 * PG, 2 * PG);                        /* hole */
    char *b = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED) _exit(11);
    b[0] = (char)n;
    munmap(b, 8 * PG);
    /* inherited mappings: COW write, then change protection / unmap part */
    priv[n * PG] = (char)(100 + n);
    if (n == 1) {
        mprotect(priv + 8 * PG, 8 * PG, PROT_READ);
        munmap(shared + 2 * PG, PG);
    } else {
        munmap(priv + 24 * PG, 8 * PG);                 /* unmap the tail */
        mprotect(shared, PG, PROT_READ);
    }
    shared[16 * PG + n] = (char)n;                      /* visible to the parent */
    printf("child %d: priv[%d]=%d\n", n, n * PG, priv[n * PG]);
    fflush(stdout);
    exit(0);
}

int main(void) {
    char *priv = mmap(NULL, 32 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *shared = mmap(NULL, 32 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (priv == MAP_FAILED || shared == MAP_FAILED) { perror("mmap"); return 1; }
    memset(priv, 1, 32 * PG);
    memset(shared, 2, 32 * PG);
    /* a fork-time variety: this range is not inherited by the children */
    char *nofork = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(nofork, 4 * PG, MADV_DONTFORK);
    /* and this one is wiped in the children */
    char *wipe = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(wipe, 9, 4 * PG);
    madvise(wipe, 4 * PG, MADV_WIPEONFORK);
    fflush(stdout);
    pid_t kids[2];
    for (int n = 1; n <= 2; n++) {
        pid_t p = fork();
        if (p < 0) { perror("fork"); return 1; }
        if (p == 0) child(n, priv, shared);
        kids[n - 1] = p;
    }
    /* the parent changes its own view while the children run */
    mprotect(wipe, PG, PROT_READ);
    munmap(nofork, 4 * PG);
    for (int n = 0; n < 2; n++) waitpid(kids[n], NULL, 0);
    printf("parent: shared[16*PG+1]=%d shared[16*PG+2]=%d priv[PG]=%d\n",
           shared[16 * PG + 1], shared[16 * PG + 2], priv[PG]);
    mprotect(priv, 4 * PG, PROT_READ);
    munmap(shared + 8 * PG, 8 * PG);
    return 0;
}
