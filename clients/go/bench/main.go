// The quota check as a Go broker sees it (the Go twin of bench/broker-path.ts): one process, one connection,
// 256 concurrent goroutines, each making its next check when the last is answered, over 64 principals.
// rivven is BrokerQuotas.Request against `bin/rivven serve` (started through conformance/harness.ts, quotas that
// never throttle); the floor is go-redis v9 doing INCR on a private redis-server over one connection, once as
// is (PoolSize 1: each INCR waits for the connection) and once pipelined (one goroutine batches whatever INCRs
// queued into one Pipelined round trip). Prints one JSON line. Run from clients/go/bench: go run .
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	rivven "github.com/rivven/rivven-quota/clients/go"
)

const (
	callers    = 256
	principals = 64
)

var (
	warmup   = flag.Duration("warmup", 3*time.Second, "warm-up per run")
	measure  = flag.Duration("measure", 5*time.Second, "measured time per run")
	deadline = flag.Duration("deadline", 0, "BrokerOptions.RecordDeadline (0: the default, 25 ms)")
	only     = flag.String("only", "", "run only rivven or redis")
	cpuprof  = flag.String("cpuprofile", "", "write a CPU profile of the measured rivven run to this file")
	memprof  = flag.String("memprofile", "", "write an allocation profile after the measured rivven run to this file")
)

type run struct {
	lat   [callers][]time.Duration
	n     atomic.Int64
	took  time.Duration
	extra map[string]any
	// CPU seconds spent during the run by this process and by the server: per check, they do not depend on
	// what else the machine runs, unlike checks/s.
	cpu, serverCPU float64
}

// cpuSeconds is a process's CPU time (user + system) from /proc/<pid>/stat; 0 where there is no /proc.
func cpuSeconds(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	user, _ := strconv.ParseFloat(fields[11], 64)
	sys, _ := strconv.ParseFloat(fields[12], 64)
	return (user + sys) / 100 // USER_HZ, 100 on Linux
}

// drive runs callers loops of check for d: each makes its next call when the last is answered. server is the
// server's pid, for its CPU time.
func drive(server int, check func(c, p int), d time.Duration) *run {
	r := &run{}
	spid := strconv.Itoa(server)
	cpu0, scpu0 := cpuSeconds("self"), cpuSeconds(spid)
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<16)
			for i := c; ; i++ {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				check(c, i%principals)
				lat = append(lat, time.Since(t0))
			}
			r.lat[c] = lat
			r.n.Add(int64(len(lat)))
		}()
	}
	wg.Wait()
	r.took = time.Since(start)
	r.cpu, r.serverCPU = cpuSeconds("self")-cpu0, cpuSeconds(spid)-scpu0
	return r
}

func (r *run) summary() map[string]any {
	var all []time.Duration
	for _, l := range r.lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	ms := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		d := all[min(len(all)-1, int(float64(len(all))*p))]
		return math.Round(float64(d)/1e4) / 100
	}
	us := func(s float64) float64 { return math.Round(s*1e8/float64(max(r.n.Load(), 1))) / 100 }
	m := map[string]any{"checks_per_sec": math.Round(float64(r.n.Load()) / r.took.Seconds()), "p50_ms": ms(0.5), "p99_ms": ms(0.99), "max_ms": ms(1),
		"client_cpu_us": us(r.cpu), "server_cpu_us": us(r.serverCPU)}
	for k, v := range r.extra {
		m[k] = v
	}
	return m
}

// startSidecar starts `bin/rivven serve` through the conformance harness (its stdin closing stops it).
func startSidecar(root string) (addr string, pid int, stop func(), err error) {
	cmd := exec.Command("node", "--import", "tsx", "conformance/harness.ts")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	sc := bufio.NewScanner(out)
	sc.Scan() // {"ready": true}
	req := `{"id":1,"cmd":"start_sidecar","clock":"real","env":{"RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE":"1000000000"}}` + "\n"
	if _, err := in.Write([]byte(req)); err != nil {
		return "", 0, nil, err
	}
	if !sc.Scan() {
		return "", 0, nil, fmt.Errorf("the harness did not answer")
	}
	var reply struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
		Host  string `json:"host"`
		Port  int    `json:"port"`
		Pid   int    `json:"pid"`
	}
	if err := json.Unmarshal(sc.Bytes(), &reply); err != nil || !reply.OK {
		return "", 0, nil, fmt.Errorf("start_sidecar: %s %v", reply.Error, err)
	}
	return net.JoinHostPort(reply.Host, strconv.Itoa(reply.Port)), reply.Pid, func() { _ = in.Close(); _ = cmd.Wait() }, nil
}

func startRedis() (addr string, pid int, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	dir, _ := os.MkdirTemp("", "rivven-go-bench-redis-")
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	for range 400 {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return addr, cmd.Process.Pid, func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = os.RemoveAll(dir) }, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "", 0, nil, fmt.Errorf("redis-server did not start")
}

type incr struct {
	key  string
	done chan error
}

// pipeliner sends whatever INCRs queued since its last round trip in one Pipelined call.
func pipeliner(ctx context.Context, rdb *redis.Client, queue chan incr) {
	batch := make([]incr, 0, callers)
	for {
		select {
		case first := <-queue:
			batch = append(batch[:0], first)
		case <-ctx.Done():
			return
		}
	drain:
		for len(batch) < cap(batch) {
			select {
			case q := <-queue:
				batch = append(batch, q)
			default:
				break drain
			}
		}
		cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, q := range batch {
				p.Incr(ctx, q.key)
			}
			return nil
		})
		for i, q := range batch {
			if err == nil {
				err = cmds[i].Err()
			}
			q.done <- err
		}
	}
}

func main() {
	flag.Parse()
	root, _ := filepath.Abs(filepath.Join("..", "..", ".."))
	names := make([]string, principals)
	for i := range names {
		names[i] = "tenant-" + strconv.Itoa(i)
	}
	results := map[string]any{"go": runtime.Version(), "gomaxprocs": runtime.GOMAXPROCS(0), "callers": callers, "principals": principals}
	ctx := context.Background()

	if *only != "redis" {
		benchRivven(ctx, root, names, results)
	}
	if *only != "rivven" {
		benchRedis(ctx, names, results)
	}
	rv, ok := results["rivven"].(map[string]any)
	ratio := func(k string) float64 {
		return math.Round(rv["answered_per_sec"].(float64)/results[k].(map[string]any)["checks_per_sec"].(float64)*100) / 100
	}
	if ok && *only == "" {
		results["rivven_vs_go_redis_incr"] = ratio("go_redis_incr")
		results["rivven_vs_go_redis_incr_pipelined"] = ratio("go_redis_incr_pipelined")
	}
	line, _ := json.Marshal(results)
	fmt.Println("BENCH " + string(line))
}

func benchRivven(ctx context.Context, root string, names []string, results map[string]any) {
	addr, spid, stop, err := startSidecar(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	client, err := rivven.Connect(ctx, &rivven.Options{Addr: addr})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var errMu sync.Mutex
	errs := map[string]int{}
	broker := rivven.NewBrokerQuotas(client, &rivven.BrokerOptions{RecordDeadline: *deadline, OnError: func(err error) {
		errMu.Lock()
		errs[err.Error()[:min(len(err.Error()), 40)]]++
		errMu.Unlock()
	}})
	check := func(_, p int) { broker.Request(ctx, names[p], "app") }
	drive(spid, check, *warmup)
	before, shortBefore := broker.Failures(), broker.ShortCircuited()
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
		}
	}
	if *memprof != "" {
		runtime.MemProfileRate = 4096
	}
	r := drive(spid, check, *measure)
	if *memprof != "" {
		if f, err := os.Create(*memprof); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			_ = f.Close()
		}
	}
	failed := broker.Failures() - before
	// Checks the sidecar answered: a check answered 0 by the breaker costs nothing and says nothing.
	r.extra = map[string]any{"answered_per_sec": math.Round(float64(r.n.Load()-failed) / r.took.Seconds()),
		"failed_open": failed, "short_circuited": broker.ShortCircuited() - shortBefore, "errors": errs}
	results["rivven"] = r.summary()
	results["record_deadline"] = broker.Options().RecordDeadline.String()
	_ = client.Close()
	stop()
}

func benchRedis(ctx context.Context, names []string, results map[string]any) {

	raddr, rpid, rstop, err := startRedis()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer rstop()
	rdb := redis.NewClient(&redis.Options{Addr: raddr, PoolSize: 1, MinIdleConns: 1, MaxActiveConns: 1})
	plain := func(_, p int) { _ = rdb.Incr(ctx, names[p]).Err() }
	drive(rpid, plain, *warmup)
	results["go_redis_incr"] = drive(rpid, plain, *measure).summary()

	queue := make(chan incr, callers)
	pctx, cancel := context.WithCancel(ctx)
	go pipeliner(pctx, rdb, queue)
	// One reply channel per caller, made once: the loop itself allocates nothing.
	dones := make([]chan error, callers)
	for i := range dones {
		dones[i] = make(chan error, 1)
	}
	piped := func(c, p int) {
		queue <- incr{names[p], dones[c]}
		<-dones[c]
	}
	drive(rpid, piped, *warmup)
	results["go_redis_incr_pipelined"] = drive(rpid, piped, *measure).summary()
	cancel()
	_ = rdb.Close()

}
