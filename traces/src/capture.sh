#!/bin/bash
# capture.sh NAME...   (re)records traces/NAME/ with tools/capture-trace.sh.
# Names: threads fork mremap files spawn pyfork xz gcc java mtchurn arenas mtshare pythreads (ls, perl, python came from
# the project's reference traces and are not produced here). Builds the C and Java sources into
# /tmp/softmm-build first. Pids, addresses and temp-dir names differ from run to run.
# Needs: strace, gcc, xz, python3 (/usr/bin/python3), a JDK 17 (java, javac).
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
traces=$(dirname "$src")
cap=${CAPTURE_TRACE:-$(cd "$(dirname "$0")/../.." && pwd)/tools/capture-trace.sh}
b=/tmp/softmm-build
mkdir -p "$b"
gcc -O2 -pthread -o "$b/threads" "$src/threads.c"
gcc -O2 -o "$b/fork" "$src/fork.c"
gcc -O2 -o "$b/mremap" "$src/mremap.c"
gcc -O2 -o "$b/files" "$src/files.c"
gcc -O2 -o "$b/spawn" "$src/spawn.c"
for p in mtchurn arenas mtshare; do gcc -O2 -pthread -o "$b/$p" "$src/$p.c"; done
javac -d "$b" "$src/Alloc.java"
for name in "$@"; do
  out=$traces/$name
  rm -rf "$out"
  case $name in
    threads|fork|mremap|spawn|mtchurn|arenas|mtshare) "$cap" "$out" "$b/$name" ;;
    files)
      w=$(mktemp -d /tmp/softmm-files-XXXXXX)
      "$cap" "$out" "$b/files" "$w"; rm -rf "$w" ;;
    pyfork)
      "$cap" "$out" /usr/bin/python3 -c 'import os, mmap, subprocess
buf = mmap.mmap(-1, 1 << 20)
buf[:5] = b"hello"
data = [bytes(1000) for _ in range(2000)]
pid = os.fork()
if pid == 0:
    extra = mmap.mmap(-1, 4 << 20); extra[0] = 1; extra.close()
    buf[:5] = b"child"
    data = None
else:
    os.waitpid(pid, 0)
    print("parent sees", bytes(buf[:5]))
    subprocess.run(["/bin/true"])
' ;;
    xz)
      w=$(mktemp -d /tmp/softmm-xz-XXXXXX)
      head -c 3000000 /usr/bin/python3.11 > "$w/input"
      "$cap" "$out" xz -T2 -6 --block-size=1MiB -k "$w/input"; rm -rf "$w" ;;
    gcc)
      w=$(mktemp -d /tmp/softmm-gcc-XXXXXX)
      printf '#include <stdio.h>\nint main(void) { printf("hello %%d\\n", 42); return 0; }\n' > "$w/hello.c"
      (cd "$w" && "$cap" "$out" env PATH=/usr/local/bin:/usr/bin:/bin gcc -O2 -c hello.c -o hello.o); rm -rf "$w" ;;
    pythreads) (cd "$traces/.." && "$cap" "$out" /usr/bin/python3 traces/src/pythreads.py) ;;
    java)
      "$cap" "$out" java -XX:+UseSerialGC -Xmx64m -cp "$b" Alloc ;;
    *) echo "unknown trace name: $name" >&2; exit 1 ;;
  esac
done
