// go_bench.go - the suite's workloads done with goroutines, for comparison
// with libfiber (tests/bench/fiber_workloads.c).
//
// Same arguments and output as fiber_workloads:
//
//	go_bench switch COUNT REPS    two goroutines ping-pong with runtime.Gosched
//	go_bench spawn COUNT REPS     start a goroutine that returns at once and
//	                              receive its result from a channel
//	go_bench sleepers N MAX_S     N goroutines time.Sleep uniform [0, MAX_S]
//
// The program runs with GOMAXPROCS=1 unless the environment sets GOMAXPROCS,
// so that goroutines share one core as fibers do; runtime.Gosched then
// always hands the core to the other goroutine of the pair.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const maxReps = 101

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go_bench: "+format+"\n", args...)
	os.Exit(1)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: go_bench switch COUNT REPS | spawn COUNT REPS | sleepers N MAX_SECONDS")
	os.Exit(2)
}

func countArg(s string, max int64) int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 || v > max {
		usage()
	}
	return v
}

func median(v []float64) float64 {
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// cpuNs is the user plus system CPU time of the process so far.
func cpuNs() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// vmHWMKiB is VmHWM from /proc/self/status: the peak RSS of the process.
func vmHWMKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kib int64
		if n, _ := fmt.Sscanf(sc.Text(), "VmHWM: %d kB", &kib); n == 1 {
			return kib
		}
	}
	return -1
}

// sleepDelay is sleeper i's delay, uniform in [0, maxNs], from the sequence
// every program of the suite computes, so that all sleep the same delays.
func sleepDelay(i uint64, maxNs int64) time.Duration {
	x := (i + 1) * 0x9E3779B97F4A7C15
	u := float64(x>>11) / 9007199254740992.0
	return time.Duration(int64(u * float64(maxNs)))
}

func runSwitch(count int64, reps int) {
	yields := count / 2
	if yields < 1 {
		yields = 1
	}
	ns := make([]float64, 0, reps)
	// Repetition -1 is an untimed warm-up.
	for r := -1; r < reps; r++ {
		var wg sync.WaitGroup
		wg.Add(2)
		yielder := func() {
			for i := int64(0); i < yields; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}
		t0 := time.Now()
		go yielder()
		go yielder()
		wg.Wait()
		t := time.Since(t0)
		if r >= 0 {
			ns = append(ns, float64(t.Nanoseconds())/float64(2*yields))
		}
	}
	fmt.Printf("switch_ns=%.3f\n", median(ns))
}

func returnArg(i int64, result chan<- int64) {
	result <- i
}

func runSpawn(count int64, reps int) {
	ns := make([]float64, 0, reps)
	// One buffered channel carries every result, as await carries a task's.
	result := make(chan int64, 1)
	var sum int64
	for r := -1; r < reps; r++ {
		t0 := time.Now()
		for i := int64(0); i < count; i++ {
			go returnArg(i+1, result)
			sum += <-result
		}
		t := time.Since(t0)
		if r >= 0 {
			ns = append(ns, float64(t.Nanoseconds())/float64(count))
		}
	}
	if sum != int64(reps+1)*(count*(count+1)/2) {
		fail("spawn: wrong results")
	}
	fmt.Printf("spawn_ns=%.3f\n", median(ns))
}

func runSleepers(n int64, maxS float64) {
	late := make([]int64, n)
	delay := make([]time.Duration, n)
	// Writing both slices makes them resident before the RSS baseline.
	for i := range delay {
		delay[i] = sleepDelay(uint64(i), int64(maxS*1e9))
		late[i] = -1
	}
	var wg sync.WaitGroup
	wg.Add(int(n))
	// The scheduler preempts the spawning loop and runs goroutines already
	// started; without this gate most of them would have slept and ended
	// before the last one was spawned, while fibers, tasks and Pth threads
	// only start once all N exist.
	gate := make(chan struct{})
	sleeper := func(i int) {
		<-gate
		start := time.Now()
		time.Sleep(delay[i])
		late[i] = int64(time.Since(start) - delay[i])
		wg.Done()
	}

	baseKiB := vmHWMKiB()
	t0 := time.Now()
	for i := 0; i < int(n); i++ {
		go sleeper(i)
	}
	spawn := time.Since(t0)
	cpu0 := cpuNs()
	close(gate)
	wg.Wait()
	wall := time.Since(t0)
	cpu := cpuNs() - cpu0
	peakKiB := vmHWMKiB()

	early := 0
	for _, l := range late {
		if l < 0 {
			early++
		}
	}
	sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
	fmt.Printf("wall_s=%.6f\n", wall.Seconds())
	fmt.Printf("spawn_ns=%.3f\n", float64(spawn.Nanoseconds())/float64(n))
	fmt.Printf("cpu_us=%.4f\n", float64(cpu)/1e3/float64(n))
	fmt.Printf("late_med_us=%.3f\n", float64(late[n/2])/1e3)
	fmt.Printf("late_p90_us=%.3f\n", float64(late[(n*9+9)/10-1])/1e3)
	fmt.Printf("late_p99_us=%.3f\n", float64(late[(n*99+99)/100-1])/1e3)
	fmt.Printf("late_max_us=%.3f\n", float64(late[n-1])/1e3)
	fmt.Printf("early=%d\n", early)
	fmt.Printf("rss_kib=%.4f\n", float64(peakKiB-baseKiB)/float64(n))
}

func main() {
	// One core, as fibers have, unless GOMAXPROCS in the environment says
	// otherwise (the suite also runs the sleepers that way on every CPU).
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	if len(os.Args) != 4 {
		usage()
	}
	switch os.Args[1] {
	case "switch":
		runSwitch(countArg(os.Args[2], 1e9), int(countArg(os.Args[3], maxReps)))
	case "spawn":
		runSpawn(countArg(os.Args[2], 1e9), int(countArg(os.Args[3], maxReps)))
	case "sleepers":
		maxS, err := strconv.ParseFloat(os.Args[3], 64)
		if err != nil || maxS < 0 || maxS > 3600 {
			usage()
		}
		runSleepers(countArg(os.Args[2], 1e8), maxS)
	default:
		usage()
	}
}
