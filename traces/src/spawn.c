/* spawn.c: the other ways to create processes.
 *  1. posix_spawn of /bin/true (glibc: clone3 with CLONE_VM|CLONE_VFORK, then execve).
 *  2. vfork() whose child changes the (shared!) address space with raw mmap/munmap
 *     system calls before it execs /bin/true: those changes are the parent's.
 *  3. clone() with CLONE_VM but without CLONE_THREAD: a separate process (own pid, own
 *     exit) that shares the parent's mm. It maps and unmaps memory, leaves one mapping
 *     behind for the parent and ends with the exit_group system call (no destructor: its
 *     mm is the parent's, whose maps file shows the result).
 *  4. clone() without CLONE_VM, with a child stack: a fork-like copy; the child exit()s
 *     normally so its maps file is written.
 * Build: gcc -O2 -o spawn spawn.c */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096L
extern char **environ;
static char *volatile left_behind;

static int vm_child(void *arg) {
    (void)arg;
    char *a = (char *)syscall(SYS_mmap, NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    a[0] = 1;
    syscall(SYS_munmap, a + 4 * PG, 4 * PG);
    char *b = (char *)syscall(SYS_mmap, NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    syscall(SYS_munmap, b, 2 * PG);
    left_behind = a;
    syscall(SYS_exit_group, 0);
    return 0;
}

static int copy_child(void *arg) {
    char *shared = arg;
    char *c = mmap(NULL, 6 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    c[0] = 2;
    mprotect(c, 2 * PG, PROT_READ);
    shared[0] = 'c';
    exit(0);
}

int main(void) {
    char *argv_true[] = {"/bin/true", NULL};
    pid_t pid;
    int st;

    /* 1. posix_spawn */
    if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv_true, environ) != 0) { perror("posix_spawn"); return 1; }
    waitpid(pid, &st, 0);

    /* 2. vfork with memory changes in the child before exec */
    pid = vfork();
    if (pid == 0) {
        char *v = (char *)syscall(SYS_mmap, NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        syscall(SYS_mprotect, v, PG, PROT_READ);
        execve("/bin/true", argv_true, environ);
        _exit(127);
    }
    waitpid(pid, &st, 0);

    /* 3. clone(CLONE_VM) without CLONE_THREAD */
    size_t stsz = 64 * 1024;
    char *stack = mmap(NULL, stsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    pid = clone(vm_child, stack + stsz, CLONE_VM | SIGCHLD, NULL);
    if (pid < 0) { perror("clone vm"); return 1; }
    waitpid(pid, &st, 0);
    printf("CLONE_VM child left %p (byte %d)\n", (void *)left_behind, left_behind ? left_behind[0] : -1);

    /* 4. clone without CLONE_VM */
    char *shared = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    fflush(stdout);
    pid = clone(copy_child, stack + stsz, SIGCHLD, shared);
    if (pid < 0) { perror("clone copy"); return 1; }
    waitpid(pid, &st, 0);
    printf("copy child wrote %c\n", shared[0]);
    munmap(stack, stsz);
    return 0;
}
