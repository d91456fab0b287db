// The Library gRPC service in Go (the seed's module A stack): grpc-go and protobuf-go as Debian packages
// them, code generated from proto/library.proto at build time (targets/go/build.sh), the standard health
// service and server reflection (v1alpha from grpc-go; v1 in reflection_v1.go).
//
//	library-grpc-go [--host 127.0.0.1] [--port 0] [--clock system|fixed:<ISO>] [--dataset-file F]
//	                [--delete-dataset-file] [--metrics-port N] [--inject-delay MICROSECONDS]
//
// Prints exactly one line, `READY grpc <host>:<port>`, once it accepts calls (with --metrics-port, `READY grpc
// <host>:<port> metrics=<host>:<metricsport>`: the call counters of metrics.go at GET /metrics on the same
// host; port 0 picks a free one); logs to stderr only; exits 0 on SIGINT/SIGTERM. `bench serve grpc --impl
// go` starts it with the seeded dataset (targets/go/__init__.py).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	pb "library/v1/librarypb"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	protov1 "github.com/golang/protobuf/proto"
)

const serviceName = "library.v1.Library"

var statusByKind = map[Kind]codes.Code{
	NotFound:           codes.NotFound,
	InvalidArgument:    codes.InvalidArgument,
	AlreadyExists:      codes.AlreadyExists,
	FailedPrecondition: codes.FailedPrecondition,
}

func toStatus(err error) error {
	var domain *LibraryError
	if errors.As(err, &domain) {
		return status.Error(statusByKind[domain.Kind], domain.Message)
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	log.Printf("unexpected error in a gRPC call: %v", err)
	return status.Error(codes.Internal, "internal server error")
}

// ---- decoding: undecodable bytes are INVALID_ARGUMENT -------------------------------------------------------
// grpc-go answers INTERNAL when a request does not unmarshal, and wraps whatever the codec returns. This codec
// never fails: it remembers which message did not decode, and the handlers refuse it as INVALID_ARGUMENT.
// The library's messages are protobuf-go (APIv2, generated at build time); the health and reflection
// messages of Debian's grpc-go 1.33 are the older github.com/golang/protobuf kind (APIv1): each is encoded
// by its own library.
var malformed sync.Map // message -> reason

type codec struct{}

func (codec) String() string { return "proto" }

func (codec) Marshal(v interface{}) ([]byte, error) {
	if message, ok := v.(proto.Message); ok {
		return proto.Marshal(message)
	}
	return protov1.Marshal(v.(protov1.Message))
}

func (codec) Unmarshal(data []byte, v interface{}) error {
	var err error
	if message, ok := v.(proto.Message); ok {
		if err = proto.Unmarshal(data, message); err != nil {
			proto.Reset(message)
		}
	} else if err = protov1.Unmarshal(data, v.(protov1.Message)); err != nil {
		v.(protov1.Message).Reset()
	}
	if err != nil {
		malformed.Store(v, fmt.Sprintf("request is not a valid %T: %v", v, err))
	}
	return nil
}

func checked(message interface{}) error {
	if reason, bad := malformed.LoadAndDelete(message); bad {
		return status.Error(codes.InvalidArgument, reason.(string))
	}
	return nil
}

// ---- messages <-> records ---------------------------------------------------------------------------------
func bookToPb(b Book) *pb.Book {
	return &pb.Book{Id: b.ID, Isbn: b.ISBN, Title: b.Title, Author: b.Author, Category: b.Category,
		Year: b.Year, TotalCopies: b.TotalCopies, AvailableCopies: b.AvailableCopies}
}

func loanToPb(l Loan) *pb.Loan {
	message := &pb.Loan{Id: l.ID, UserId: l.UserID, BookId: l.BookID, LoanedAt: timestamppb.New(l.LoanedAt),
		DueAt: timestamppb.New(l.DueAt), Status: pb.LoanStatus(pb.LoanStatus_value["LOAN_STATUS_"+l.Status])}
	if l.ReturnedAt != nil {
		message.ReturnedAt = timestamppb.New(*l.ReturnedAt)
	}
	return message
}

func newBookFromPb(r *pb.AddBookRequest) NewBook {
	return NewBook{r.Isbn, r.Title, r.Author, r.Category, r.Year, r.Copies}
}

// statusFromPb: an unknown enum number or UNSPECIFIED becomes a name the service refuses.
func statusFromPb(value pb.LoanStatus) string {
	name, known := pb.LoanStatus_name[int32(value)]
	if !known {
		return fmt.Sprintf("UNKNOWN(%d)", value)
	}
	return strings.TrimPrefix(name, "LOAN_STATUS_")
}

// ---- the servicer -----------------------------------------------------------------------------------------
type server struct {
	pb.UnimplementedLibraryServer
	lib *Library
}

func (s *server) AddBook(_ context.Context, r *pb.AddBookRequest) (*pb.Book, error) {
	if err := checked(r); err != nil {
		return nil, err
	}
	book, err := s.lib.AddBook(newBookFromPb(r))
	if err != nil {
		return nil, toStatus(err)
	}
	return bookToPb(book), nil
}

func (s *server) GetBook(_ context.Context, r *pb.GetBookRequest) (*pb.Book, error) {
	if err := checked(r); err != nil {
		return nil, err
	}
	book, err := s.lib.GetBook(r.Id)
	if err != nil {
		return nil, toStatus(err)
	}
	return bookToPb(book), nil
}

func (s *server) DeleteBook(_ context.Context, r *pb.DeleteBookRequest) (*pb.DeleteBookResponse, error) {
	if err := checked(r); err != nil {
		return nil, err
	}
	if err := s.lib.DeleteBook(r.Id); err != nil {
		return nil, toStatus(err)
	}
	return &pb.DeleteBookResponse{}, nil
}

func (s *server) AddUser(_ context.Context, r *pb.AddUserRequest) (*pb.User, error) {
	if err := checked(r); err != nil {
		return nil, err
	}
	user, err := s.lib.AddUser(r.Name, r.Email)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.User{Id: user.ID, Name: user.Name, Email: user.Email}, nil
}

func (s *server) GetUser(_ context.Context, r *pb.GetUserRequest) (*pb.User, error) {
	if err := checked(r); err != nil {
		return nil, err
	}
	user, err := s.lib.GetUser(r.Id)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.User{Id: user.ID, Name: user.Name, Email: user.Email}, nil
}

func (s *server) CreateLoan(_ context.Context, r *pb.CreateLoanRequest) (*pb.Loan, error) {
	if err := checked(r); err != nil {
		return nil, err
	}
	days := int32(defaultDays)
	if r.Days != nil {
		days = *r.Days
	}
	loan, err := s.lib.CreateLoan(r.UserId, r.BookId, days)
	if err != nil {
		return nil, toStatus(err)
	}
	return loanToPb(loan), nil
}

func (s *server) ReturnLoan(_ context.Context, r *pb.ReturnLoanRequest) (*pb.Loan, error) {
	if err := checked(r); err != nil {
		return nil, err
	}
	loan, err := s.lib.ReturnLoan(r.Id)
	if err != nil {
		return nil, toStatus(err)
	}
	return loanToPb(loan), nil
}

func (s *server) GetLoan(_ context.Context, r *pb.GetLoanRequest) (*pb.Loan, error) {
	if err := checked(r); err != nil {
		return nil, err
	}
	loan, err := s.lib.GetLoan(r.Id)
	if err != nil {
		return nil, toStatus(err)
	}
	return loanToPb(loan), nil
}

func (s *server) ListBooksByCategory(r *pb.ListBooksByCategoryRequest, stream pb.Library_ListBooksByCategoryServer) error {
	if err := checked(r); err != nil {
		return err
	}
	books, err := s.lib.ListBooksByCategory(r.Category)
	if err != nil {
		return toStatus(err)
	}
	for _, book := range books {
		if err := stream.Send(bookToPb(book)); err != nil {
			return err
		}
	}
	return nil
}

func (s *server) GetOverdueLoans(r *pb.GetOverdueLoansRequest, stream pb.Library_GetOverdueLoansServer) error {
	if err := checked(r); err != nil {
		return err
	}
	for _, loan := range s.lib.GetOverdueLoans() {
		if err := stream.Send(loanToPb(loan)); err != nil {
			return err
		}
	}
	return nil
}

// BulkAddBooks: all or nothing; an endless stream is refused before it is buffered.
func (s *server) BulkAddBooks(stream pb.Library_BulkAddBooksServer) error {
	var items []NewBook
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := checked(r); err != nil {
			return err
		}
		if err := checkBatchIndex(len(items)); err != nil {
			return toStatus(err)
		}
		items = append(items, newBookFromPb(r))
	}
	ids, err := s.lib.BulkAddBooks(items)
	if err != nil {
		return toStatus(err)
	}
	return stream.SendAndClose(&pb.BulkAddBooksResponse{Added: int32(len(ids)), Ids: ids})
}

// UpdateLoanStatus: each update is applied as it arrives and answered with the loan; the first failing update
// ends the call with its status, the earlier ones stay applied.
func (s *server) UpdateLoanStatus(stream pb.Library_UpdateLoanStatusServer) error {
	for index := 0; ; index++ {
		r, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := checked(r); err != nil {
			return err
		}
		if err := checkBatchIndex(index); err != nil {
			return toStatus(err)
		}
		loan, err := s.lib.ApplyStatusUpdate(r.LoanId, statusFromPb(r.Status))
		if err != nil {
			return toStatus(err)
		}
		if err := stream.Send(loanToPb(loan)); err != nil {
			return err
		}
	}
}

// ---- process ----------------------------------------------------------------------------------------------
func parseClock(spec string) (func() time.Time, error) {
	if spec == "system" {
		return func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }, nil
	}
	if strings.HasPrefix(spec, "fixed:") {
		text := strings.TrimPrefix(spec, "fixed:")
		instant, err := time.Parse(time.RFC3339Nano, text)
		if err != nil {
			return nil, fmt.Errorf("clock %q: %v", spec, err)
		}
		instant = instant.UTC().Truncate(time.Microsecond)
		return func() time.Time { return instant }, nil
	}
	return nil, fmt.Errorf("clock %q: expected 'system' or 'fixed:<ISO 8601 instant>'", spec)
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("go target: ")
	host := flag.String("host", "127.0.0.1", "address to bind")
	port := flag.Int("port", 0, "TCP port; 0 picks a free one")
	clock := flag.String("clock", "system", "'system' or 'fixed:<ISO instant>'")
	datasetFile := flag.String("dataset-file", "", "a library-dataset/1 document to serve")
	deleteDataset := flag.Bool("delete-dataset-file", false, "delete the dataset document once read")
	metricsPort := flag.Int("metrics-port", -1, "serve the call counters at GET /metrics on this port (0: a free one)")
	injectDelay := flag.Float64("inject-delay", 0, "make every call this many microseconds slower (busy-wait)")
	flag.Parse()
	if *port < 0 || *port > 65535 {
		log.Fatalf("--port %d is not a TCP port (0..65535)", *port)
	}
	if *metricsPort < -1 || *metricsPort > 65535 {
		log.Fatalf("--metrics-port %d is not a TCP port (0..65535)", *metricsPort)
	}
	if !(*injectDelay >= 0 && *injectDelay < 1e12) { // also refuses NaN and infinities
		log.Fatalf("--inject-delay %v must be a non-negative number of microseconds", *injectDelay)
	}
	counters := newCallCounters(time.Duration(*injectDelay * float64(time.Microsecond)))

	now, err := parseClock(*clock)
	if err != nil {
		log.Fatal(err)
	}
	lib := NewLibrary(now)
	if *datasetFile != "" {
		if err := lib.Load(*datasetFile); err != nil {
			log.Fatalf("dataset %s: %v", *datasetFile, err)
		}
		if *deleteDataset {
			os.Remove(*datasetFile)
		}
	}
	listener, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		log.Fatalf("cannot serve grpc on %s:%d: %v", *host, *port, err)
	}
	// targets/limits.py, the same for every implementation.
	s := grpc.NewServer(
		grpc.CustomCodec(codec{}), //nolint:staticcheck // the one server option of grpc-go 1.33 that sets a codec
		grpc.UnaryInterceptor(counters.unaryInterceptor),
		grpc.StreamInterceptor(counters.streamInterceptor),
		grpc.MaxRecvMsgSize(8<<20),
		grpc.MaxSendMsgSize(8<<20),
		grpc.MaxConcurrentStreams(256),
		grpc.MaxHeaderListSize(64<<10),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 75 * time.Second}),
	)
	pb.RegisterLibraryServer(s, &server{lib: lib})
	healthServer := health.NewServer()
	healthServer.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthServer.SetServingStatus(serviceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, healthServer)
	reflection.Register(s)
	registerReflectionV1(s)

	shown := *host
	if strings.Contains(shown, ":") {
		shown = "[" + shown + "]"
	}
	ready := fmt.Sprintf("READY grpc %s:%d", shown, listener.Addr().(*net.TCPAddr).Port)
	if *metricsPort >= 0 {
		metricsListener, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*metricsPort)))
		if err != nil {
			log.Fatalf("cannot serve metrics on %s:%d: %v", *host, *metricsPort, err)
		}
		counters.serve(metricsListener)
		ready += fmt.Sprintf(" metrics=%s:%d", shown, metricsListener.Addr().(*net.TCPAddr).Port)
	}
	fmt.Println(ready)
	os.Stdout.Sync()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		healthServer.Shutdown()
		timer := time.AfterFunc(time.Second, s.Stop)
		s.GracefulStop()
		timer.Stop()
	}()
	if err := s.Serve(listener); err != nil {
		log.Fatal(err)
	}
}
