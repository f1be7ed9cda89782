package sandboxd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is a failed call: the gRPC status code and the server's message.
// Match it with errors.Is against the Err* values (errors.Is(err,
// sandboxd.ErrNotFound)), or errors.As to read the message.
type Error struct {
	Code    codes.Code
	Message string
	// Op names the call that failed ("Stat", "Upload", ...), if known.
	Op  string
	err error
}

func (e *Error) Error() string {
	if e.Op != "" {
		return fmt.Sprintf("sandboxd: %s: %s: %s", e.Op, codeName(e.Code), e.Message)
	}
	return fmt.Sprintf("sandboxd: %s: %s", codeName(e.Code), e.Message)
}

// Unwrap returns the underlying gRPC status error.
func (e *Error) Unwrap() error { return e.err }

// Is matches the sentinel of its code; DEADLINE_EXCEEDED also matches
// context.DeadlineExceeded and CANCELLED context.Canceled.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case codeError:
		return t.code == e.Code
	}
	switch {
	case target == context.DeadlineExceeded:
		return e.Code == codes.DeadlineExceeded
	case target == context.Canceled:
		return e.Code == codes.Canceled
	}
	return false
}

// GRPCStatus lets status.FromError see the original status.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

type codeError struct{ code codes.Code }

func (c codeError) Error() string { return "sandboxd: " + codeName(c.code) }

// Sentinels for errors.Is, one per gRPC status code the service uses.
var (
	ErrNotFound           error = codeError{codes.NotFound}
	ErrAlreadyExists      error = codeError{codes.AlreadyExists}
	ErrFailedPrecondition error = codeError{codes.FailedPrecondition}
	ErrResourceExhausted  error = codeError{codes.ResourceExhausted}
	ErrUnavailable        error = codeError{codes.Unavailable}
	ErrPermissionDenied   error = codeError{codes.PermissionDenied}
	ErrInvalidArgument    error = codeError{codes.InvalidArgument}
	ErrDeadlineExceeded   error = codeError{codes.DeadlineExceeded}
	ErrCanceled           error = codeError{codes.Canceled}
	ErrOutOfRange         error = codeError{codes.OutOfRange}
	ErrUnauthenticated    error = codeError{codes.Unauthenticated}
	ErrInternal           error = codeError{codes.Internal}
	ErrUnimplemented      error = codeError{codes.Unimplemented}
	ErrAborted            error = codeError{codes.Aborted}
	ErrUnknown            error = codeError{codes.Unknown}
)

func codeName(c codes.Code) string {
	switch c {
	case codes.NotFound:
		return "not found"
	case codes.AlreadyExists:
		return "already exists"
	case codes.FailedPrecondition:
		return "failed precondition"
	case codes.ResourceExhausted:
		return "resource exhausted"
	case codes.Unavailable:
		return "unavailable"
	case codes.PermissionDenied:
		return "permission denied"
	case codes.InvalidArgument:
		return "invalid argument"
	case codes.DeadlineExceeded:
		return "deadline exceeded"
	case codes.Canceled:
		return "canceled"
	}
	return c.String()
}

// wrapErr turns a gRPC error into an *Error; nil stays nil, other errors
// (already wrapped, io errors) pass through.
func wrapErr(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: codes.DeadlineExceeded, Message: err.Error(), err: err}
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Code: codes.Canceled, Message: err.Error(), err: err}
	}
	if s, ok := status.FromError(err); ok {
		return &Error{Code: s.Code(), Message: s.Message(), err: err}
	}
	return err
}

func withOp(err error, op string) error {
	var e *Error
	if errors.As(err, &e) && e.Op == "" {
		e.Op = op
	}
	return err
}

// ExitError is returned by Run with Command.Check when the command did not
// exit with code 0 (or was killed). The Result is complete.
type ExitError struct {
	*Result
}

func (e *ExitError) Error() string {
	switch {
	case e.Signal != "":
		return fmt.Sprintf("sandboxd: command killed by %s (%s)", e.Signal, e.Reason)
	case e.Reason != ReasonExited:
		return fmt.Sprintf("sandboxd: command ended: %s (exit code %d)", e.Reason, e.ExitCode)
	}
	return fmt.Sprintf("sandboxd: command exited with code %d", e.ExitCode)
}

func randInt63n(n int64) int64 { return rand.Int64N(n) }
