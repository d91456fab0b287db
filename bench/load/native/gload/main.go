// gload: the harness's own compiled load generator, for what wrk and h2load cannot express.
//
//	gload run --spec SPEC.json --out LOG.bin   drive a target; one 56-byte record per request, summary on stdout
//	gload null --protocol http1|grpc           a server that answers every request at once (the engine's floor)
//
// It exists for two jobs: the open model (requests sent on a fixed schedule whatever the answers do, latency
// measured from each request's intended send time, so coordinated omission is corrected) on every protocol,
// and gRPC requests that each need their own body (client-streamed bulk inserts with unique ISBNs), which
// h2load cannot send. HTTP/1.1 uses Go's net/http with a fixed pool of keep-alive connections; gRPC uses
// grpc-go with pre-encoded messages (a codec that passes bytes through), so no generated code is needed.
// Built from Debian's Go toolchain and packaged grpc-go (GOPATH mode, nothing downloaded).
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ---- the spec the harness writes -------------------------------------------------------------------------

// Operation is one kind of request of the window's mix.
type Operation struct {
	Name   string  `json:"name"`
	Weight float64 `json:"weight"`
	// gRPC: the full method name; a request is a list of base64 messages (several for client streams).
	GrpcMethod    string     `json:"grpc_method"`
	ClientStreams bool       `json:"client_streams"`
	ServerStreams bool       `json:"server_streams"`
	Messages      [][]string `json:"messages"`
	// HTTP/1.1: method, path, headers, and one body per request variant (base64; empty for none).
	Method     string            `json:"method"`
	Paths      []string          `json:"paths"`
	Headers    map[string]string `json:"headers"`
	Bodies     []string          `json:"bodies"`
	NdjsonOut  bool              `json:"ndjson_out"` // count response lines as streamed items
	UniqueEach bool              `json:"unique_each"`
}

// Spec is one window of load.
type Spec struct {
	Protocol    string      `json:"protocol"` // http1 | grpc
	Target      string      `json:"target"`   // host:port
	Model       string      `json:"model"`    // closed | open
	DurationS   float64     `json:"duration_s"`
	WarmupS     float64     `json:"warmup_s"`
	Connections int         `json:"connections"`
	Concurrency int         `json:"concurrency"` // closed: workers; open: most requests in flight (0: no limit)
	Rate        float64     `json:"rate"`        // open: requests per second
	TimeoutS    float64     `json:"timeout_s"`
	Seed        int64       `json:"seed"`
	Operations  []Operation `json:"operations"`
}

// ---- records ------------------------------------------------------------------------------------------

// Record is one request: times in nanoseconds since the window's origin; status is the HTTP status or the
// gRPC code (0 = OK), or a negative value for a transport failure. Intended: when the schedule wanted it
// sent (closed model: when it was started); Dispatch: when the generator got to it (minus Intended = the
// generator's pacing error); Start: when it really left (an HTTP/1.1 request first waits for a free
// connection); First: first streamed item (= End without items); End: last byte of the answer.
type Record struct {
	Op       uint16
	Status   int32
	Items    uint32
	Intended int64
	Dispatch int64
	Start    int64
	First    int64
	End      int64
}

const (
	prSetPdeathsig  = 1                      // prctl(2) PR_SET_PDEATHSIG
	prSetTimerslack = 29                     // prctl(2) PR_SET_TIMERSLACK
	maxEarly        = 200 * time.Microsecond // the most the dispatcher spins before a request
)

const (
	statusTimeout   = -1
	statusTransport = -2
	statusExhausted = -3 // a request that needed a body of its own found none left: not sent
)

func (r *Record) put(buf []byte) {
	binary.LittleEndian.PutUint16(buf[0:], r.Op)
	binary.LittleEndian.PutUint16(buf[2:], 0)
	binary.LittleEndian.PutUint32(buf[4:], uint32(r.Status))
	binary.LittleEndian.PutUint32(buf[8:], r.Items)
	binary.LittleEndian.PutUint32(buf[12:], 0)
	binary.LittleEndian.PutUint64(buf[16:], uint64(r.Intended))
	binary.LittleEndian.PutUint64(buf[24:], uint64(r.Dispatch))
	binary.LittleEndian.PutUint64(buf[32:], uint64(r.Start))
	binary.LittleEndian.PutUint64(buf[40:], uint64(r.First))
	binary.LittleEndian.PutUint64(buf[48:], uint64(r.End))
}

const recordSize = 56

// ---- request sources ----------------------------------------------------------------------------------

type prepared struct {
	op       Operation
	messages [][][]byte // gRPC: per variant, the messages
	bodies   [][]byte   // HTTP/1.1: per variant, the body
	next     uint64     // round robin over variants
}

func decode(items []string) ([][]byte, error) {
	out := make([][]byte, len(items))
	for i, item := range items {
		b, err := base64.StdEncoding.DecodeString(item)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func prepare(spec *Spec) ([]*prepared, error) {
	var ops []*prepared
	for _, op := range spec.Operations {
		p := &prepared{op: op}
		if spec.Protocol == "grpc" {
			for _, variant := range op.Messages {
				msgs, err := decode(variant)
				if err != nil {
					return nil, fmt.Errorf("operation %s: %w", op.Name, err)
				}
				p.messages = append(p.messages, msgs)
			}
			if len(p.messages) == 0 {
				return nil, fmt.Errorf("operation %s: no messages", op.Name)
			}
		} else {
			bodies, err := decode(op.Bodies)
			if err != nil {
				return nil, fmt.Errorf("operation %s: %w", op.Name, err)
			}
			p.bodies = bodies
			if len(p.bodies) == 0 {
				p.bodies = [][]byte{nil}
			}
			if len(op.Paths) == 0 {
				return nil, fmt.Errorf("operation %s: no path", op.Name)
			}
		}
		ops = append(ops, p)
	}
	if len(ops) == 0 {
		return nil, errors.New("no operations")
	}
	return ops, nil
}

// variant picks the next request variant; ok is false when a unique-each pool is used up.
func (p *prepared) variant(n int) (int, bool) {
	i := atomic.AddUint64(&p.next, 1) - 1
	if p.op.UniqueEach && i >= uint64(n) {
		return 0, false
	}
	return int(i % uint64(n)), true
}

// ---- drivers ------------------------------------------------------------------------------------------

type driver interface {
	do(ctx context.Context, op int, rec *Record, origin time.Time)
	close()
}

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = data
	return nil
}
func (rawCodec) Name() string { return "proto" }

// String makes it a (legacy) grpc.Codec too, which grpc.CustomCodec wants for the null server.
func (rawCodec) String() string { return "proto" }

type grpcDriver struct {
	conns []*grpc.ClientConn
	ops   []*prepared
	next  uint64
}

func newGrpcDriver(spec *Spec, ops []*prepared) (*grpcDriver, error) {
	d := &grpcDriver{ops: ops}
	n := spec.Connections
	if n < 1 {
		n = 1
	}
	for i := 0; i < n; i++ {
		// One HTTP/2 connection each: WithBlock so the window starts on an open connection.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := grpc.DialContext(ctx, spec.Target, grpc.WithInsecure(), grpc.WithBlock(),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{}),
				grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
		cancel()
		if err != nil {
			d.close()
			return nil, fmt.Errorf("connect %s: %w", spec.Target, err)
		}
		d.conns = append(d.conns, conn)
	}
	return d, nil
}

func (d *grpcDriver) close() {
	for _, c := range d.conns {
		c.Close()
	}
}

func codeOf(err error) int32 {
	if errors.Is(err, context.DeadlineExceeded) {
		return statusTimeout
	}
	if s, ok := status.FromError(err); ok {
		if s.Code() == codes.DeadlineExceeded {
			return statusTimeout
		}
		return int32(s.Code())
	}
	return statusTransport
}

func (d *grpcDriver) do(ctx context.Context, op int, rec *Record, origin time.Time) {
	p := d.ops[op]
	i, ok := p.variant(len(p.messages))
	if !ok {
		rec.Status = statusExhausted
		rec.End = rec.Start
		return
	}
	msgs := p.messages[i]
	conn := d.conns[atomic.AddUint64(&d.next, 1)%uint64(len(d.conns))]
	desc := &grpc.StreamDesc{ClientStreams: p.op.ClientStreams, ServerStreams: p.op.ServerStreams}
	stream, err := conn.NewStream(ctx, desc, p.op.GrpcMethod)
	if err != nil {
		rec.Status = codeOf(err)
		rec.End = int64(time.Since(origin))
		return
	}
	for _, m := range msgs {
		m := m
		if err = stream.SendMsg(&m); err != nil {
			break
		}
	}
	if err == nil || err == io.EOF {
		err = stream.CloseSend()
	}
	var items uint32
	for err == nil {
		var reply []byte
		err = stream.RecvMsg(&reply)
		if err == nil {
			if items == 0 {
				rec.First = int64(time.Since(origin))
			}
			items++
		}
	}
	rec.End = int64(time.Since(origin))
	rec.Items = items
	if err == io.EOF {
		rec.Status = 0
	} else {
		rec.Status = codeOf(err)
	}
}

type httpDriver struct {
	client *http.Client
	base   string
	ops    []*prepared
}

func newHTTPDriver(spec *Spec, ops []*prepared) *httpDriver {
	n := spec.Connections
	if n < 1 {
		n = 1
	}
	transport := &http.Transport{
		// A fixed pool of keep-alive connections, like wrk's: requests beyond it wait for a free one (that
		// wait counts in the corrected latency), no pipelining, no compression, no proxy.
		MaxConnsPerHost:     n,
		MaxIdleConnsPerHost: n,
		MaxIdleConns:        n,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}
	return &httpDriver{client: &http.Client{Transport: transport}, base: "http://" + spec.Target, ops: ops}
}

func (d *httpDriver) close() { d.client.CloseIdleConnections() }

func (d *httpDriver) do(ctx context.Context, op int, rec *Record, origin time.Time) {
	p := d.ops[op]
	i, ok := p.variant(len(p.bodies))
	if !ok {
		rec.Status = statusExhausted
		rec.End = rec.Start
		return
	}
	path := p.op.Paths[i%len(p.op.Paths)]
	var body io.Reader
	if p.bodies[i] != nil {
		body = strings.NewReader(string(p.bodies[i]))
	}
	req, err := http.NewRequestWithContext(ctx, p.op.Method, d.base+path, body)
	if err != nil {
		rec.Status = statusTransport
		rec.End = int64(time.Since(origin))
		return
	}
	for k, v := range p.op.Headers {
		req.Header.Set(k, v)
	}
	// The request really leaves when it has a connection: that is the "actual send" of the uncorrected latency.
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { rec.Start = int64(time.Since(origin)) }}
	req = req.WithContext(httptrace.WithClientTrace(ctx, trace))
	resp, err := d.client.Do(req)
	if err != nil {
		rec.End = int64(time.Since(origin))
		if errors.Is(err, context.DeadlineExceeded) {
			rec.Status = statusTimeout
		} else {
			rec.Status = statusTransport
		}
		return
	}
	var items uint32
	if p.op.NdjsonOut {
		reader := bufio.NewReaderSize(resp.Body, 64<<10)
		for {
			line, err := reader.ReadSlice('\n')
			if len(line) > 1 {
				if items == 0 {
					rec.First = int64(time.Since(origin))
				}
				items++
			}
			if err == bufio.ErrBufferFull {
				for err == bufio.ErrBufferFull {
					_, err = reader.ReadSlice('\n')
				}
			}
			if err != nil {
				break
			}
		}
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	rec.End = int64(time.Since(origin))
	rec.Items = items
	rec.Status = int32(resp.StatusCode)
}

// ---- the window ---------------------------------------------------------------------------------------

type summary struct {
	OriginUnixNs int64   `json:"origin_unix_ns"`
	WallS        float64 `json:"wall_s"`
	Scheduled    int64   `json:"scheduled"`
	Completed    int64   `json:"completed"`
	LateDispatch int64   `json:"late_dispatch"` // open: dispatched > 1 ms after the intended time
	CPUUserS     float64 `json:"cpu_user_s"`
	CPUSysS      float64 `json:"cpu_sys_s"`
	Records      int64   `json:"records"`
	// Every request of the invocation per operation, warm-up included: what the server's counters saw.
	SentByOp []int64 `json:"sent_by_op"`
}

type recorder struct {
	mu   sync.Mutex
	w    *bufio.Writer
	n    int64
	buf  [recordSize]byte
	open bool // records are kept only inside the measured window
}

func (r *recorder) add(rec *Record) {
	r.mu.Lock()
	if r.open {
		rec.put(r.buf[:])
		r.w.Write(r.buf[:])
		r.n++
	}
	r.mu.Unlock()
}

type picker struct {
	mu    sync.Mutex
	rng   *rand.Rand
	cum   []float64
	total float64
}

func newPicker(ops []*prepared, seed int64) *picker {
	p := &picker{rng: rand.New(rand.NewSource(seed))}
	for _, op := range ops {
		w := op.op.Weight
		if w <= 0 {
			w = 1
		}
		p.total += w
		p.cum = append(p.cum, p.total)
	}
	return p
}

func (p *picker) pick() int {
	if len(p.cum) == 1 {
		return 0
	}
	p.mu.Lock()
	x := p.rng.Float64() * p.total
	p.mu.Unlock()
	for i, c := range p.cum {
		if x < c {
			return i
		}
	}
	return len(p.cum) - 1
}

func runWindow(spec *Spec, out io.Writer) (*summary, error) {
	ops, err := prepare(spec)
	if err != nil {
		return nil, err
	}
	var d driver
	if spec.Protocol == "grpc" {
		gd, err := newGrpcDriver(spec, ops)
		if err != nil {
			return nil, err
		}
		d = gd
	} else if spec.Protocol == "http1" {
		d = newHTTPDriver(spec, ops)
	} else {
		return nil, fmt.Errorf("protocol %q: use http1 or grpc", spec.Protocol)
	}
	defer d.close()
	timeout := time.Duration(spec.TimeoutS * float64(time.Second))
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	rec := &recorder{w: bufio.NewWriterSize(out, 1<<20)}
	pick := newPicker(ops, spec.Seed)
	sum := &summary{SentByOp: make([]int64, len(ops))}
	var completed, scheduled, late int64

	// dispatched: when the schedule let the request go (open model: the dispatcher's own instant, so
	// dispatched - intended is the schedule's slip alone; the goroutine's start is the tool's own overhead,
	// like its client code, and shows in its floor against a null server).
	one := func(op int, origin time.Time, intended, dispatched time.Duration) {
		atomic.AddInt64(&sum.SentByOp[op], 1)
		r := Record{Op: uint16(op), Intended: int64(intended), Dispatch: int64(dispatched)}
		r.Start = int64(time.Since(origin))
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		d.do(ctx, op, &r, origin)
		cancel()
		if r.First == 0 {
			r.First = r.End
		}
		atomic.AddInt64(&completed, 1)
		rec.add(&r)
	}

	stop := make(chan struct{})
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-interrupted
		close(stop)
	}()

	warmup := time.Duration(spec.WarmupS * float64(time.Second))
	duration := time.Duration(spec.DurationS * float64(time.Second))
	var usage0 syscall.Rusage
	var origin time.Time
	switch spec.Model {
	case "closed":
		workers := spec.Concurrency
		if workers < 1 {
			workers = 1
		}
		origin = time.Now().Add(warmup)
		end := origin.Add(duration)
		var wg sync.WaitGroup
		go func() {
			time.Sleep(time.Until(origin))
			syscall.Getrusage(syscall.RUSAGE_SELF, &usage0)
			rec.mu.Lock()
			rec.open = true
			rec.mu.Unlock()
		}()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) {
					select {
					case <-stop:
						return
					default:
					}
					atomic.AddInt64(&scheduled, 1)
					now := time.Since(origin)
					one(pick.pick(), origin, now, now)
				}
			}()
		}
		wg.Wait()
	case "open":
		if spec.Rate <= 0 {
			return nil, errors.New("open model needs a positive rate")
		}
		interval := time.Duration(float64(time.Second) / spec.Rate)
		var slots chan struct{}
		if spec.Concurrency > 0 {
			slots = make(chan struct{}, spec.Concurrency)
		}
		// The schedule runs through the warm-up too, so the measured window starts in a steady state.
		start := time.Now().Add(50 * time.Millisecond)
		origin = start.Add(warmup)
		total := int64((warmup + duration) / interval)
		var wg sync.WaitGroup
		opened := false
		// Go 1.19's timers wake on whole milliseconds (epoll's timeout unit): the dispatcher sleeps in
		// nanosleep(2) on its own OS thread instead, with the kernel's timer slack cut to 1 ns, so requests
		// leave within tens of microseconds of their schedule without a spinning, CPU-eating dispatcher.
		// A second P: the request goroutines run on another OS thread as soon as the dispatcher sleeps (with
		// one P, taken when pinned to one CPU, they waited for the runtime to notice the blocked syscall).
		if runtime.GOMAXPROCS(0) < 2 {
			runtime.GOMAXPROCS(2)
		}
		runtime.LockOSThread()
		syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerslack, 1, 0)
		// The kernel still wakes a sleeper some tens of microseconds late here (a VM's timer): sleep until a
		// little before the intended instant, by the overshoot seen so far, and spin the rest.
		var early time.Duration
	schedule:
		for i := int64(0); i < total; i++ {
			intendedAbs := start.Add(time.Duration(i) * interval)
			if wait := time.Until(intendedAbs) - early; wait > 0 {
				ts := syscall.NsecToTimespec(int64(wait))
				syscall.Nanosleep(&ts, nil)
				overshoot := time.Since(intendedAbs.Add(-early))
				if overshoot < 0 {
					overshoot = 0
				}
				early += (overshoot - early) / 8 // a moving average, capped so a stall does not make it spin
				if early > maxEarly {
					early = maxEarly
				}
			}
			for time.Now().Before(intendedAbs) {
			}
			if !opened && !intendedAbs.Before(origin) {
				syscall.Getrusage(syscall.RUSAGE_SELF, &usage0)
				rec.mu.Lock()
				rec.open = true
				rec.mu.Unlock()
				opened = true
			}
			select {
			case <-stop:
				break schedule
			default:
			}
			intended := intendedAbs.Sub(origin)
			dispatched := time.Since(origin)
			if opened {
				atomic.AddInt64(&scheduled, 1)
				if time.Since(intendedAbs) > time.Millisecond {
					late++
				}
			}
			op := pick.pick()
			wg.Add(1)
			go func() {
				defer wg.Done()
				if slots != nil {
					slots <- struct{}{}
					defer func() { <-slots }()
				}
				one(op, origin, intended, dispatched)
			}()
		}
		wg.Wait()
	default:
		return nil, fmt.Errorf("model %q: use closed or open", spec.Model)
	}
	var usage1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage1)
	rec.mu.Lock()
	rec.open = false
	err = rec.w.Flush()
	rec.mu.Unlock()
	if err != nil {
		return nil, err
	}
	sum.OriginUnixNs = origin.UnixNano()
	sum.WallS = time.Since(origin).Seconds()
	sum.Scheduled = scheduled
	sum.Completed = completed
	sum.LateDispatch = late
	sum.Records = rec.n
	sum.CPUUserS = tv(usage1.Utime) - tv(usage0.Utime)
	sum.CPUSysS = tv(usage1.Stime) - tv(usage0.Stime)
	return sum, nil
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// ---- the null server ----------------------------------------------------------------------------------

func serveNull(protocol, listen string) error {
	lis, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Printf("READY null-%s %s\n", protocol, lis.Addr().String())
	os.Stdout.Sync()
	done := make(chan os.Signal, 1)
	signal.Notify(done, syscall.SIGINT, syscall.SIGTERM)
	switch protocol {
	case "http1":
		body := []byte("{}")
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		})}
		go srv.Serve(lis)
		<-done
		return srv.Close()
	case "grpc":
		empty := []byte{}
		srv := grpc.NewServer(grpc.CustomCodec(rawCodec{}), grpc.UnknownServiceHandler(
			func(_ interface{}, stream grpc.ServerStream) error {
				for {
					var msg []byte
					if err := stream.RecvMsg(&msg); err != nil {
						if err == io.EOF {
							break
						}
						return err
					}
				}
				return stream.SendMsg(&empty)
			}))
		go srv.Serve(lis)
		<-done
		srv.Stop()
		return nil
	}
	return fmt.Errorf("protocol %q: use http1 or grpc", protocol)
}

// dieWithParent: started by the harness (LIBRARY_BENCH_PARENT_PID set), end with it (PR_SET_PDEATHSIG),
// like every other child the harness starts (targets/lifetime.py).
func dieWithParent() {
	parent := os.Getenv("LIBRARY_BENCH_PARENT_PID")
	if parent == "" {
		return
	}
	syscall.RawSyscall(syscall.SYS_PRCTL, prSetPdeathsig, uintptr(syscall.SIGTERM), 0)
	if fmt.Sprint(os.Getppid()) != parent {
		fmt.Fprintf(os.Stderr, "gload: parent %s is gone (or this is not its child): exiting\n", parent)
		os.Exit(1) // the parent died before the request took effect
	}
}

func main() {
	dieWithParent()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gload run --spec SPEC.json --out LOG.bin | gload null --protocol http1|grpc")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "run":
		fs := flag.NewFlagSet("run", flag.ExitOnError)
		specPath := fs.String("spec", "", "window spec (JSON)")
		outPath := fs.String("out", "", "binary request log")
		fs.Parse(os.Args[2:])
		data, err := os.ReadFile(*specPath)
		if err != nil {
			fmt.Fprintf(os.Stderr, "gload: %v\n", err)
			os.Exit(2)
		}
		var spec Spec
		if err := json.Unmarshal(data, &spec); err != nil {
			fmt.Fprintf(os.Stderr, "gload: %s: %v\n", *specPath, err)
			os.Exit(2)
		}
		out, err := os.Create(*outPath)
		if err != nil {
			fmt.Fprintf(os.Stderr, "gload: %v\n", err)
			os.Exit(2)
		}
		sum, err := runWindow(&spec, out)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "gload: %v\n", err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(sum)
	case "null":
		fs := flag.NewFlagSet("null", flag.ExitOnError)
		protocol := fs.String("protocol", "http1", "http1 or grpc")
		listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
		fs.Parse(os.Args[2:])
		if err := serveNull(*protocol, *listen); err != nil {
			fmt.Fprintf(os.Stderr, "gload: %v\n", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "gload: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}
