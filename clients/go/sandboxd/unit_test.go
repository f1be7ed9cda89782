package sandboxd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Tests that need no server.

func TestUTF8WriterHoldsPartialCharacters(t *testing.T) {
	in := []byte("a€b😀c\xff")
	// Every way of cutting the input in two.
	for cut := 0; cut <= len(in); cut++ {
		var got []string
		w := NewUTF8Writer(writerFunc(func(p []byte) { got = append(got, string(p)) }))
		w.Write(in[:cut])
		w.Write(in[cut:])
		w.Flush()
		if strings.Join(got, "") != string(in) {
			t.Fatalf("cut %d: %q", cut, got)
		}
		for _, s := range got[:max(len(got)-1, 0)] {
			if !strings.HasSuffix(s, "\xff") && !isValid(s) {
				t.Fatalf("cut %d: chunk %q splits a character", cut, s)
			}
		}
	}
}

func isValid(s string) bool { return strings.ToValidUTF8(s, "?") == s }

func TestErrorsMatchSentinels(t *testing.T) {
	err := wrapErr(status.Error(codes.NotFound, "sandbox x not found"))
	err = fmt.Errorf("context: %w", withOp(err, "GetSandbox"))
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrAlreadyExists) {
		t.Fatal(err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Message != "sandbox x not found" || e.Op != "GetSandbox" || status.Code(e) != codes.NotFound {
		t.Fatalf("%#v", e)
	}
	if d := wrapErr(status.Error(codes.DeadlineExceeded, "late")); !errors.Is(d, context.DeadlineExceeded) || !errors.Is(d, ErrDeadlineExceeded) {
		t.Fatal(d)
	}
}
