// A small Java program with threads (run as a single-file source program,
// `java Threads.java`, so the JDK's compiler runs in the JVM too): a thread
// pool, a CountDownLatch, synchronized counters and Thread.sleep; the JVM
// itself adds its GC, JIT and safepoint threads. Prints a deterministic
// line; used by crates/atoll/tests/runtimes.rs and bench/run.sh.
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

public class Threads {
    static long counter = 0;

    static synchronized void add(long n) {
        counter += n;
    }

    public static void main(String[] args) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(4);
        CountDownLatch latch = new CountDownLatch(8);
        List<Future<Long>> futures = new ArrayList<>();
        for (int w = 1; w <= 8; w++) {
            final int n = w;
            futures.add(pool.submit(() -> {
                long s = 0;
                for (int i = 0; i < n * 1_000_000; i++) {
                    s += i % 7;
                }
                List<byte[]> garbage = new ArrayList<>();
                for (int i = 0; i < 200; i++) {
                    garbage.add(new byte[64 * 1024]);
                    if (garbage.size() > 16) garbage.clear();
                }
                Thread.sleep(n);
                add(n);
                latch.countDown();
                return s;
            }));
        }
        latch.await();
        List<Long> all = new ArrayList<>();
        for (Future<Long> f : futures) all.add(f.get());
        pool.shutdown();
        Collections.sort(all);
        System.out.println("java threads ok " + all.size() + " " + all.get(0) + " "
                + all.get(all.size() - 1) + " " + counter);
    }
}
