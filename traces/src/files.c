/* files.c: file mappings. Creates files in a fresh temp dir (argv[1], or mkdtemp under
 * /tmp), ftruncates them, maps them MAP_SHARED and MAP_PRIVATE at various page offsets,
 * writes through both (shared writes reach the file, private ones are COW), unmaps parts,
 * mprotects parts, msyncs, remaps a file mapping with mremap, maps a file whose name has a
 * space, maps a file and then unlinks it (maps shows "(deleted)"), and maps a memfd
 * (memfd_create) shared and private. File descriptors stay open where noted so strace -y
 * shows the path.
 * Build: gcc -O2 -o files files.c */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096L
#define CHECK(p, what) do { if ((p) == MAP_FAILED) { perror(what); exit(1); } } while (0)

static int mkfile(const char *dir, const char *name, off_t size, char *path, size_t pathlen) {
    snprintf(path, pathlen, "%s/%s", dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) { perror(path); exit(1); }
    if (ftruncate(fd, size) != 0) { perror("ftruncate"); exit(1); }
    return fd;
}

int main(int argc, char **argv) {
    char tmpl[] = "/tmp/softmm-files-XXXXXX";
    const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
    if (!dir) { perror("mkdtemp"); return 1; }
    char p1[512], p2[512], p3[512];

    /* data.bin: 64 pages */
    int fd = mkfile(dir, "data.bin", 64 * PG, p1, sizeof p1);
    char *sh = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(sh, "mmap shared");
    memset(sh, 'S', 64 * PG);
    char *pv = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 8 * PG);    /* offset 8 pages */
    CHECK(pv, "mmap private");
    pv[0] = 'P';                                      /* COW: file keeps 'S' */
    char *ro = mmap(NULL, 8 * PG, PROT_READ, MAP_SHARED, fd, 32 * PG);                  /* read-only shared view */
    CHECK(ro, "mmap ro");
    char *ex = mmap(NULL, 4 * PG, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 60 * PG);      /* "text" */
    CHECK(ex, "mmap exec");
    msync(sh, 64 * PG, MS_SYNC);
    munmap(sh + 16 * PG, 8 * PG);                     /* hole in the shared mapping: splits it */
    mprotect(sh + 40 * PG, 4 * PG, PROT_READ);        /* another split */
    mprotect(pv + 4 * PG, 4 * PG, PROT_NONE);
    munmap(pv + 12 * PG, 4 * PG);                     /* shrink from the top */
    munmap(ro, PG);                                   /* shrink from the bottom */

    /* MAP_FIXED file mapping over part of an anonymous one */
    char *anon = mmap(NULL, 32 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(anon, "anon");
    char *fx = mmap(anon + 8 * PG, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 24 * PG);
    CHECK(fx, "fixed file");
    fx[0] = 'F';

    /* mremap a file mapping: grow (moves), file offset keeps going */
    char *g = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 4 * PG);
    CHECK(g, "g");
    char *g2 = mremap(g, 4 * PG, 12 * PG, MREMAP_MAYMOVE);
    CHECK(g2, "mremap file");
    g2[11 * PG] = 'G';

    /* a file whose name has a space; mapped beyond EOF partly (mapping is larger than file) */
    int fd2 = mkfile(dir, "with space.dat", 3 * PG + 100, p2, sizeof p2);
    char *w = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
    CHECK(w, "space");
    w[0] = 'W';

    /* mapped, closed and unlinked: maps shows "(deleted)" */
    int fd3 = mkfile(dir, "gone.tmp", 8 * PG, p3, sizeof p3);
    char *gone = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd3, 0);
    CHECK(gone, "gone");
    gone[0] = 1;
    close(fd3);
    unlink(p3);
    /* fd 3.. may be reused: the next mapping's fd is annotated with a different path */

    /* memfd */
    int mfd = memfd_create("softmm-memfd", MFD_CLOEXEC);
    if (mfd < 0) { perror("memfd_create"); return 1; }
    ftruncate(mfd, 16 * PG);
    char *m1 = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    CHECK(m1, "memfd shared");
    char *m2 = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 8 * PG);
    CHECK(m2, "memfd private");
    m1[8 * PG] = 'M';
    m2[0] = 'm';
    munmap(m1 + 4 * PG, 4 * PG);

    /* read-only fd: MAP_SHARED|PROT_WRITE fails with EACCES, MAP_PRIVATE|PROT_WRITE works */
    int rfd = open(p1, O_RDONLY);
    char *bad = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
    if (bad == MAP_FAILED) perror("shared writable on O_RDONLY (expected)");
    char *okp = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, rfd, 0);
    CHECK(okp, "private on O_RDONLY");
    okp[1] = 'o';
    if (mprotect(ro + PG, PG, PROT_READ | PROT_WRITE) != 0) perror("mprotect ro");      /* ok: fd was O_RDWR */
    if (mprotect(okp, PG, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) perror("mprotect okp");

    printf("files done in %s: page 8 (private COW, file keeps S) = %c, page 24 (via fixed) = %c, page 15 (via mremap) = %c\n",
           dir, sh[8 * PG], sh[24 * PG], sh[15 * PG]);
    /* keep the files for inspection; the README's command removes the directory */
    return 0;
}
