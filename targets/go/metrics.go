// Calls and errors per operation: the server-side ground truth a benchmark checks its own counts against
// (the same counters as the Python targets, targets/core/calls.py and targets/metrics.py), served with
// client_golang (Debian's golang-github-prometheus-client-golang-dev, 1.14: it builds offline in GOPATH mode
// like the rest) on a side port in the Prometheus text format (`--metrics-port`):
//
//	library_calls_total{operation="GetBook"}                     calls that reached the service (on entry)
//	library_errors_total{operation="GetBook",kind="NotFound"}   calls that ended in an error of that kind
//
// Every operation is listed from the start (0 before any call), so a scrape before a window is comparable
// with one after it; an error kind appears once it occurred. The kinds are the core's ErrorKind values.
// `--inject-delay` makes every call slower by busy-waiting that long on entry (a deliberately slowed target:
// busy, not asleep, so capacity drops as well as latency).
package main

import (
	"context"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	pb "library/v1/librarypb"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var kindByStatus = map[codes.Code]string{
	codes.NotFound:           "NotFound",
	codes.InvalidArgument:    "InvalidArgument",
	codes.AlreadyExists:      "AlreadyExists",
	codes.FailedPrecondition: "FailedPrecondition",
	codes.Internal:           "Internal",
}

type callCounters struct {
	prefix     string          // "/library.v1.Library/": only the service's methods are calls
	operations map[string]bool // the service's methods in the contract
	calls      *prometheus.CounterVec
	errors     *prometheus.CounterVec
	registry   *prometheus.Registry
	delay      time.Duration
}

// newCallCounters: the operations are the methods of the contract's service (the 12 of
// targets/core/operations.py), read from the generated descriptor.
func newCallCounters(delay time.Duration) *callCounters {
	service := pb.File_library_proto.Services().ByName("Library")
	c := &callCounters{
		prefix:     "/" + string(service.FullName()) + "/",
		operations: map[string]bool{},
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "library_calls_total",
			Help: "Calls that reached the service, per operation",
		}, []string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "library_errors_total",
			Help: "Calls that ended in an error, per operation and kind",
		}, []string{"operation", "kind"}),
		registry: prometheus.NewRegistry(), // only these two families: no Go runtime or process metrics
		delay:    delay,
	}
	c.registry.MustRegister(c.calls, c.errors)
	methods := service.Methods()
	for i := 0; i < methods.Len(); i++ {
		name := string(methods.Get(i).Name())
		c.operations[name] = true
		c.calls.WithLabelValues(name) // present with 0 before any call
	}
	return c
}

func (c *callCounters) operation(fullMethod string) (string, bool) {
	if !strings.HasPrefix(fullMethod, c.prefix) {
		return "", false
	}
	name := strings.TrimPrefix(fullMethod, c.prefix)
	return name, c.operations[name]
}

// enter counts the call once, when it reaches the service (a stream when it starts), then busy-waits the
// injected delay. The codec never fails (main.go), so an undecodable request gets here too: it is a call of
// its operation that ends in InvalidArgument, as on the Python target.
func (c *callCounters) enter(operation string) {
	c.calls.WithLabelValues(operation).Inc()
	if c.delay > 0 {
		deadline := time.Now().Add(c.delay)
		for time.Now().Before(deadline) {
			// spin: the delay must cost CPU
		}
	}
}

// done records how the call ended: a status of a domain error counts as its kind; a call whose client left
// (its context cancelled or past its deadline) is not an error of the server; anything else is Internal.
func (c *callCounters) done(ctx context.Context, operation string, err error) {
	if err == nil {
		return
	}
	code := status.Code(err)
	kind, known := kindByStatus[code]
	if !known {
		if ctx.Err() != nil || code == codes.Canceled || code == codes.DeadlineExceeded {
			return
		}
		kind = "Internal"
	}
	c.errors.WithLabelValues(operation, kind).Inc()
}

func (c *callCounters) unaryInterceptor(ctx context.Context, request interface{}, info *grpc.UnaryServerInfo,
	handler grpc.UnaryHandler) (interface{}, error) {
	operation, counted := c.operation(info.FullMethod)
	if !counted {
		return handler(ctx, request)
	}
	c.enter(operation)
	response, err := handler(ctx, request)
	c.done(ctx, operation, err)
	return response, err
}

func (c *callCounters) streamInterceptor(server interface{}, stream grpc.ServerStream, info *grpc.StreamServerInfo,
	handler grpc.StreamHandler) error {
	operation, counted := c.operation(info.FullMethod)
	if !counted {
		return handler(server, stream)
	}
	c.enter(operation)
	err := handler(server, stream)
	c.done(stream.Context(), operation, err)
	return err
}

// serve answers GET /metrics on the listener (until the process ends).
func (c *callCounters) serve(listener net.Listener) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(c.registry, promhttp.HandlerOpts{ErrorLog: log.Default()}))
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := server.Serve(listener); err != nil && err != http.ErrServerClosed {
			log.Printf("metrics server: %v", err)
		}
	}()
}
