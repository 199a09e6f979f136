// Node.js worker_threads: four workers (each its own V8 isolate and OS
// thread) compute and post results back; the main thread also waits on a
// timer. Prints a deterministic line; used by
// crates/atoll/tests/runtimes.rs and bench/run.sh's runtimes section.
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');

if (isMainThread) {
  const jobs = [1, 2, 3, 4].map((n) => new Promise((resolve, reject) => {
    const w = new Worker(__filename, { workerData: n });
    w.on('message', resolve);
    w.on('error', reject);
  }));
  const tick = new Promise((resolve) => setTimeout(resolve, 5));
  Promise.all([...jobs, tick]).then((r) => {
    const sums = r.slice(0, 4).sort((a, b) => a - b);
    console.log('node workers ok', sums.length, sums[0], sums[3]);
  });
} else {
  let s = 0;
  for (let i = 0; i < workerData * 2000000; i++) s += i % 7;
  const garbage = [];
  for (let i = 0; i < 200; i++) {
    garbage.push(Buffer.alloc(64 * 1024));
    if (garbage.length > 16) garbage.length = 0;
  }
  parentPort.postMessage(s + garbage.length);
}
