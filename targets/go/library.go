// The library service in Go: the same records, rules and semantics as targets/core (README, "The service"),
// written without it. Protocol-free: main.go translates gRPC messages to these calls.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
)

// Limits of targets/core/validation.py.
const (
	titleMax     = 300
	authorMax    = 200
	categoryMax  = 64
	nameMax      = 200
	emailMax     = 254
	yearMin      = 1000
	yearMax      = 2100
	copiesMax    = 10000
	loanDaysMin  = 1
	loanDaysMax  = 365
	bulkMax      = 10000
	defaultDays  = 14
	datasetMagic = "library-dataset/1"
)

// Python's whitespace (str.isspace); RE2's \s is ASCII only.
const pyWhitespace = `\t\n\v\f\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}`

var (
	blank = regexp.MustCompile(`^[` + pyWhitespace + `]*$`)
	email = regexp.MustCompile(`^[^@` + pyWhitespace + `]{1,64}@[^@.` + pyWhitespace + `]+(\.[^@.` + pyWhitespace + `]+)+$`)
	// Python's str.casefold, for the e-mail uniqueness rule (ß and ss are one address, as in the core).
	folder = cases.Fold()
)

// Kind is the domain error kind (targets/core/errors.py).
type Kind string

const (
	NotFound           Kind = "NotFound"
	InvalidArgument    Kind = "InvalidArgument"
	AlreadyExists      Kind = "AlreadyExists"
	FailedPrecondition Kind = "FailedPrecondition"
)

// LibraryError is the only failure the service reports on purpose.
type LibraryError struct {
	Kind    Kind
	Message string
}

func (e *LibraryError) Error() string { return e.Message }

func fail(kind Kind, format string, args ...any) *LibraryError {
	return &LibraryError{kind, fmt.Sprintf(format, args...)}
}

// Records; instants are UTC and kept to the microsecond, as the core keeps them.
type Book struct {
	ID              int64  `json:"id"`
	ISBN            string `json:"isbn"`
	Title           string `json:"title"`
	Author          string `json:"author"`
	Category        string `json:"category"`
	Year            int32  `json:"year"`
	TotalCopies     int32  `json:"total_copies"`
	AvailableCopies int32  `json:"available_copies"`
}

type User struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

type Loan struct {
	ID         int64
	UserID     int64
	BookID     int64
	LoanedAt   time.Time
	DueAt      time.Time
	ReturnedAt *time.Time
	Status     string // ACTIVE, RETURNED, OVERDUE, LOST
}

type NewBook struct {
	ISBN, Title, Author, Category string
	Year, Copies                  int32
}

// ---- validation -----------------------------------------------------------------------------------------
func validateText(field, value string, maxLen int) error {
	if blank.MatchString(value) {
		return fail(InvalidArgument, "%s must not be empty", field)
	}
	if n := utf8.RuneCountInString(value); n > maxLen {
		return fail(InvalidArgument, "%s is %d characters long; the limit is %d", field, n, maxLen)
	}
	if !utf8.ValidString(value) {
		return fail(InvalidArgument, "%s is not valid Unicode text", field)
	}
	for _, r := range value {
		if unicode.Is(unicode.Cc, r) {
			return fail(InvalidArgument, "%s must not contain control characters", field)
		}
	}
	return nil
}

func validateID(field string, id int64) error {
	if id < 1 {
		return fail(InvalidArgument, "%s must be a positive integer, got %d", field, id)
	}
	return nil
}

func inRange(field string, value, low, high int32) error {
	if value < low || value > high {
		return fail(InvalidArgument, "%s must be between %d and %d, got %d", field, low, high, value)
	}
	return nil
}

func isASCIIDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func normalizeISBN(value string) (string, error) {
	compact := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(value))
	if len(compact) == 13 && isASCIIDigits(compact) {
		total := 0
		for i := 0; i < 12; i++ {
			weight := 1
			if i%2 == 1 {
				weight = 3
			}
			total += int(compact[i]-'0') * weight
		}
		if (10-total%10)%10 == int(compact[12]-'0') {
			return compact, nil
		}
		return "", fail(InvalidArgument, "isbn %q has a wrong check digit", value)
	}
	if len(compact) == 10 && isASCIIDigits(compact[:9]) && (isASCIIDigits(compact[9:]) || compact[9] == 'X') {
		total := 0
		for i := 0; i < 10; i++ {
			digit := 10
			if compact[i] != 'X' {
				digit = int(compact[i] - '0')
			}
			total += (10 - i) * digit
		}
		if total%11 == 0 {
			return compact, nil
		}
		return "", fail(InvalidArgument, "isbn %q has a wrong check digit", value)
	}
	shown := []rune(value)
	if len(shown) > 40 {
		shown = shown[:40]
	}
	return "", fail(InvalidArgument, "isbn %q is not an ISBN-10 or ISBN-13", string(shown))
}

func validateNewBook(b NewBook) (NewBook, error) {
	isbn, err := normalizeISBN(b.ISBN)
	if err != nil {
		return b, err
	}
	b.ISBN = isbn
	for _, check := range []error{
		validateText("title", b.Title, titleMax),
		validateText("author", b.Author, authorMax),
		validateText("category", b.Category, categoryMax),
		inRange("year", b.Year, yearMin, yearMax),
		inRange("copies", b.Copies, 0, copiesMax),
	} {
		if check != nil {
			return b, check
		}
	}
	return b, nil
}

func checkBatchIndex(index int) error {
	if index >= bulkMax {
		return fail(InvalidArgument, "one call may hold at most %d items", bulkMax)
	}
	return nil
}

// ---- the service ----------------------------------------------------------------------------------------
// Library holds every record; one mutex makes each operation atomic, as the core's store lock does.
type Library struct {
	mu             sync.Mutex
	now            func() time.Time
	books          map[int64]Book
	users          map[int64]User
	loans          map[int64]Loan
	bookByISBN     map[string]int64
	userByEmail    map[string]int64
	booksByCat     map[string][]int64 // in id order
	openLoans      map[int64]bool
	nextBook       int64
	nextUser       int64
	nextLoan       int64
}

func NewLibrary(now func() time.Time) *Library {
	return &Library{
		now: now, books: map[int64]Book{}, users: map[int64]User{}, loans: map[int64]Loan{},
		bookByISBN: map[string]int64{}, userByEmail: map[string]int64{}, booksByCat: map[string][]int64{},
		openLoans: map[int64]bool{}, nextBook: 1, nextUser: 1, nextLoan: 1,
	}
}

type datasetDocument struct {
	Format string `json:"format"`
	Books  []Book `json:"books"`
	Users  []User `json:"users"`
	Loans  []struct {
		ID         int64   `json:"id"`
		UserID     int64   `json:"user_id"`
		BookID     int64   `json:"book_id"`
		LoanedAt   string  `json:"loaned_at"`
		DueAt      string  `json:"due_at"`
		ReturnedAt *string `json:"returned_at"`
		Status     string  `json:"status"`
	} `json:"loans"`
	NextIDs map[string]int64 `json:"next_ids"`
}

func parseInstant(text string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, text)
	return t.UTC().Truncate(time.Microsecond), err
}

// Load reads a library-dataset/1 document (targets/core/dataset.py: dataset_document).
func (l *Library) Load(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc datasetDocument
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	if doc.Format != datasetMagic {
		return fmt.Errorf("unknown dataset format %q", doc.Format)
	}
	for _, b := range doc.Books {
		l.putBook(b)
	}
	for _, u := range doc.Users {
		l.putUser(u)
	}
	sort.Slice(doc.Loans, func(i, j int) bool { return doc.Loans[i].ID < doc.Loans[j].ID })
	for _, raw := range doc.Loans {
		loan := Loan{ID: raw.ID, UserID: raw.UserID, BookID: raw.BookID, Status: raw.Status}
		if loan.LoanedAt, err = parseInstant(raw.LoanedAt); err != nil {
			return err
		}
		if loan.DueAt, err = parseInstant(raw.DueAt); err != nil {
			return err
		}
		if raw.ReturnedAt != nil {
			returned, err := parseInstant(*raw.ReturnedAt)
			if err != nil {
				return err
			}
			loan.ReturnedAt = &returned
		}
		l.putLoan(loan)
	}
	l.nextBook, l.nextUser, l.nextLoan = doc.NextIDs["book"], doc.NextIDs["user"], doc.NextIDs["loan"]
	return nil
}

func (l *Library) putBook(b Book) {
	if _, known := l.books[b.ID]; !known {
		l.booksByCat[b.Category] = append(l.booksByCat[b.Category], b.ID)
	}
	l.books[b.ID] = b
	l.bookByISBN[b.ISBN] = b.ID
}

func (l *Library) putUser(u User) {
	l.users[u.ID] = u
	l.userByEmail[folder.String(u.Email)] = u.ID
}

func (l *Library) putLoan(loan Loan) {
	l.loans[loan.ID] = loan
	if loan.Status == "RETURNED" {
		delete(l.openLoans, loan.ID)
	} else {
		l.openLoans[loan.ID] = true
	}
}

func (l *Library) AddBook(input NewBook) (Book, error) {
	b, err := validateNewBook(input)
	if err != nil {
		return Book{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, taken := l.bookByISBN[b.ISBN]; taken {
		return Book{}, fail(AlreadyExists, "a book with isbn %s already exists", b.ISBN)
	}
	return l.insertBook(b), nil
}

func (l *Library) insertBook(b NewBook) Book {
	book := Book{l.nextBook, b.ISBN, b.Title, b.Author, b.Category, b.Year, b.Copies, b.Copies}
	l.nextBook++
	l.putBook(book)
	return book
}

func (l *Library) getBook(id int64) (Book, error) {
	if err := validateID("book_id", id); err != nil {
		return Book{}, err
	}
	book, ok := l.books[id]
	if !ok {
		return Book{}, fail(NotFound, "book %d not found", id)
	}
	return book, nil
}

func (l *Library) GetBook(id int64) (Book, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.getBook(id)
}

func (l *Library) DeleteBook(id int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	book, err := l.getBook(id)
	if err != nil {
		return err
	}
	if book.AvailableCopies != book.TotalCopies {
		return fail(FailedPrecondition, "book %d has %d copies on loan", id, book.TotalCopies-book.AvailableCopies)
	}
	delete(l.books, id)
	delete(l.bookByISBN, book.ISBN)
	ids := l.booksByCat[book.Category]
	for i, other := range ids {
		if other == id {
			ids = append(ids[:i:i], ids[i+1:]...)
			break
		}
	}
	if len(ids) == 0 {
		delete(l.booksByCat, book.Category)
	} else {
		l.booksByCat[book.Category] = ids
	}
	return nil
}

// ListBooksByCategory returns a snapshot, in id order; an unknown category is an empty list.
func (l *Library) ListBooksByCategory(category string) ([]Book, error) {
	if err := validateText("category", category, categoryMax); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	books := make([]Book, 0, len(l.booksByCat[category]))
	for _, id := range l.booksByCat[category] {
		books = append(books, l.books[id])
	}
	return books, nil
}

// BulkAddBooks is all or nothing: every item is validated and checked for duplicates before any is stored.
func (l *Library) BulkAddBooks(items []NewBook) ([]int64, error) {
	books := make([]NewBook, 0, len(items))
	seen := map[string]int{}
	for index, item := range items {
		if err := checkBatchIndex(index); err != nil {
			return nil, err
		}
		b, err := validateNewBook(item)
		if err != nil {
			return nil, fail(InvalidArgument, "book #%d: %s", index, err.Error())
		}
		if first, repeated := seen[b.ISBN]; repeated {
			return nil, fail(AlreadyExists, "book #%d: isbn %s repeats book #%d", index, b.ISBN, first)
		}
		seen[b.ISBN] = index
		books = append(books, b)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for index, b := range books {
		if _, taken := l.bookByISBN[b.ISBN]; taken {
			return nil, fail(AlreadyExists, "book #%d: isbn %s already exists", index, b.ISBN)
		}
	}
	ids := make([]int64, 0, len(books))
	for _, b := range books {
		ids = append(ids, l.insertBook(b).ID)
	}
	return ids, nil
}

func (l *Library) AddUser(name, address string) (User, error) {
	if err := validateText("name", name, nameMax); err != nil {
		return User{}, err
	}
	if err := validateText("email", address, emailMax); err != nil {
		return User{}, err
	}
	if !email.MatchString(address) {
		return User{}, fail(InvalidArgument, "email %q is not an e-mail address", address)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, taken := l.userByEmail[folder.String(address)]; taken {
		return User{}, fail(AlreadyExists, "a user with email %q already exists", address)
	}
	user := User{l.nextUser, name, address}
	l.nextUser++
	l.putUser(user)
	return user, nil
}

func (l *Library) getUser(id int64) (User, error) {
	if err := validateID("user_id", id); err != nil {
		return User{}, err
	}
	user, ok := l.users[id]
	if !ok {
		return User{}, fail(NotFound, "user %d not found", id)
	}
	return user, nil
}

func (l *Library) GetUser(id int64) (User, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.getUser(id)
}

func (l *Library) CreateLoan(userID, bookID int64, days int32) (Loan, error) {
	for _, check := range []error{
		validateID("user_id", userID), validateID("book_id", bookID), inRange("days", days, loanDaysMin, loanDaysMax),
	} {
		if check != nil {
			return Loan{}, check
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.getUser(userID); err != nil {
		return Loan{}, err
	}
	book, err := l.getBook(bookID)
	if err != nil {
		return Loan{}, err
	}
	if book.AvailableCopies < 1 {
		return Loan{}, fail(FailedPrecondition, "book %d has no copy available", bookID)
	}
	book.AvailableCopies--
	l.putBook(book)
	now := l.now()
	loan := Loan{ID: l.nextLoan, UserID: userID, BookID: bookID, LoanedAt: now,
		DueAt: now.Add(time.Duration(days) * 24 * time.Hour), Status: "ACTIVE"}
	l.nextLoan++
	l.putLoan(loan)
	return loan, nil
}

// asSeenNow: an ACTIVE loan past its due date reads as OVERDUE (the clock decides, not a job).
func (l *Library) asSeenNow(loan Loan) Loan {
	if loan.Status == "ACTIVE" && loan.DueAt.Before(l.now()) {
		loan.Status = "OVERDUE"
	}
	return loan
}

func (l *Library) getLoan(id int64) (Loan, error) {
	if err := validateID("loan_id", id); err != nil {
		return Loan{}, err
	}
	loan, ok := l.loans[id]
	if !ok {
		return Loan{}, fail(NotFound, "loan %d not found", id)
	}
	return l.asSeenNow(loan), nil
}

func (l *Library) GetLoan(id int64) (Loan, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.getLoan(id)
}

func (l *Library) closeLoan(loan Loan) Loan {
	if book, ok := l.books[loan.BookID]; ok {
		book.AvailableCopies++
		l.putBook(book)
	}
	now := l.now()
	loan.Status, loan.ReturnedAt = "RETURNED", &now
	l.putLoan(loan)
	return loan
}

func (l *Library) ReturnLoan(id int64) (Loan, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	loan, err := l.getLoan(id)
	if err != nil {
		return Loan{}, err
	}
	if loan.Status == "RETURNED" {
		return Loan{}, fail(FailedPrecondition, "loan %d is already returned", id)
	}
	return l.closeLoan(loan), nil
}

// GetOverdueLoans: loans not returned and past due (stored OVERDUE, or ACTIVE past due), in id order.
func (l *Library) GetOverdueLoans() []Loan {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]int64, 0, len(l.openLoans))
	for id := range l.openLoans {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	now := l.now()
	overdue := []Loan{}
	for _, id := range ids {
		loan := l.loans[id]
		if loan.Status == "OVERDUE" || (loan.Status == "ACTIVE" && loan.DueAt.Before(now)) {
			loan.Status = "OVERDUE"
			overdue = append(overdue, loan)
		}
	}
	return overdue
}

// ApplyStatusUpdate is one step of UpdateLoanStatus; status is a name (an unknown one is InvalidArgument).
func (l *Library) ApplyStatusUpdate(loanID int64, status string) (Loan, error) {
	switch status {
	case "OVERDUE", "LOST", "RETURNED":
	case "ACTIVE":
		return Loan{}, fail(InvalidArgument, "status ACTIVE cannot be set; use OVERDUE, LOST or RETURNED")
	default:
		return Loan{}, fail(InvalidArgument, "status %q is not one of OVERDUE, LOST, RETURNED", status)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	loan, err := l.getLoan(loanID)
	if err != nil {
		return Loan{}, err
	}
	if loan.Status == "RETURNED" {
		return Loan{}, fail(FailedPrecondition, "loan %d is already returned", loan.ID)
	}
	if status == "RETURNED" {
		return l.closeLoan(loan), nil
	}
	if loan.Status == "LOST" && status != "LOST" {
		return Loan{}, fail(FailedPrecondition, "loan %d is lost; it can only be returned", loan.ID)
	}
	loan.Status = status
	l.putLoan(loan)
	return loan, nil
}
