// A small Go program that exercises what the Go runtime needs of a kernel:
// several OS threads (GOMAXPROCS), goroutines preempted asynchronously
// (SIGURG sent with tgkill), channels and timers (futex, nanosleep,
// epoll), and memory returned to the kernel (madvise) by the GC.
// Prints a deterministic line; used by crates/atoll/tests/runtimes.rs and
// bench/run.sh's runtimes section.
package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"time"
)

// spin loops without function calls, so only asynchronous preemption
// (a signal) lets other goroutines run on its thread.
func spin(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += i % 7
	}
	return s
}

func main() {
	runtime.GOMAXPROCS(4)
	var wg sync.WaitGroup
	results := make(chan int, 8)
	for w := 1; w <= 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			garbage := make([][]byte, 0)
			for i := 0; i < 200; i++ {
				garbage = append(garbage, make([]byte, 64*1024))
				if len(garbage) > 16 {
					garbage = garbage[:0]
				}
			}
			time.Sleep(time.Duration(w) * time.Millisecond)
			results <- spin(w*2_000_000) + len(garbage)
		}(w)
	}
	// A ticker goroutine that must get the CPU while the others spin.
	ticks := 0
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				ticks++
			case <-done:
				return
			}
		}
	}()
	wg.Wait()
	close(done)
	close(results)
	var all []int
	for r := range results {
		all = append(all, r)
	}
	sort.Ints(all)
	runtime.GC()
	debug.FreeOSMemory()
	fmt.Println("go threads ok", len(all), all[0], all[len(all)-1], ticks > 0)
}
