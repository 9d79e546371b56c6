// Alloc.java: a tiny multi-threaded Java program for the "java" trace. Three worker threads
// allocate byte arrays of varied sizes (some larger than a TLAB, some kept alive so the
// heap grows and the serial collector runs), the main thread joins them and calls System.gc().
// Build: javac -d /tmp/softmm-build Alloc.java
import java.util.ArrayList;
import java.util.List;

public class Alloc {
    public static void main(String[] args) throws Exception {
        Thread[] ts = new Thread[3];
        long[] sums = new long[ts.length];
        for (int t = 0; t < ts.length; t++) {
            final int id = t;
            ts[t] = new Thread(() -> {
                List<byte[]> keep = new ArrayList<>();
                long sum = 0;
                for (int i = 0; i < 2000; i++) {
                    int size = (i % 10 == 0) ? 256 * 1024 : 64 + (i * 37) % 4096;
                    byte[] b = new byte[size];
                    b[size - 1] = (byte) i;
                    sum += b[size - 1];
                    if (i % 50 == 0) keep.add(b);
                }
                sums[id] = sum + keep.size();
            }, "worker-" + t);
            ts[t].start();
        }
        for (Thread t : ts) t.join();
        System.gc();
        long total = 0;
        for (long s : sums) total += s;
        System.out.println("java done: " + total);
    }
}
