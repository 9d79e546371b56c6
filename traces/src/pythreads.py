# pythreads.py: 4 Python threads allocating 200 KB bytearrays (glibc mmap chunks), 64 KiB
# anonymous mmap.mmap objects (written, closed) and many small objects (pymalloc arenas).
# Recorded by traces/src/capture.sh pythreads.
import threading, mmap
def work(i):
    keep = []
    for r in range(40):
        keep.append(bytearray(200000 + 1000 * i))     # mmap'd by glibc (above the threshold)
        m = mmap.mmap(-1, 64 * 1024)                  # anonymous mmap, written, closed
        m[:4] = b"abcd"
        m.close()
        if len(keep) > 4:
            keep.pop(0)
        keep.append([str(x) * 3 for x in range(300)])  # small objects: pymalloc arenas
ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print("pythreads done")
