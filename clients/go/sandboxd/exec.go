package sandboxd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"iter"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	sandboxv1 "sandboxd.dev/gen/go/sandbox/v1"
)

// Command is what to run in a sandbox. Make one with Shell or Argv and
// adjust it with the With* methods or its fields.
type Command struct {
	// Exactly one of Args (a program and its arguments, passed literally)
	// and Script (a bash command line) is set.
	Args   []string
	Script string

	Env   map[string]string
	Cwd   string // relative to the home directory; empty: the home directory
	Stdin []byte // written to stdin, which is then closed
	// Timeout is the command's own limit: the server kills its process group
	// after it (Result.Reason == ReasonTimeout). The ctx deadline of Run is
	// the RPC's: when it passes Run fails with ErrDeadlineExceeded.
	Timeout time.Duration
	// MaxOutputBytes caps each of stdout and stderr (0: no cap); past it the
	// command is killed, or with DiscardOverLimit keeps running with the
	// rest dropped.
	MaxOutputBytes   uint64
	DiscardOverLimit bool
	// Check makes Run return an *ExitError when the command does not exit
	// with code 0.
	Check bool

	// Kept commands (see Sandbox.Attach).
	Background    bool
	KeepStdinOpen bool
	Tag           string
	Pty           *PtySize
	RetainBytes   uint64
}

// PtySize is a terminal's size and TERM ("xterm-256color" when empty).
type PtySize struct {
	Rows, Cols uint32
	Term       string
}

// Shell runs a bash command line (`bash -c script`).
func Shell(script string) Command { return Command{Script: script} }

// Argv runs a program with arguments, without a shell.
func Argv(args ...string) Command { return Command{Args: args} }

// WithEnv adds an environment variable.
func (c Command) WithEnv(key, value string) Command {
	env := make(map[string]string, len(c.Env)+1)
	for k, v := range c.Env {
		env[k] = v
	}
	env[key] = value
	c.Env = env
	return c
}

// WithCwd sets the working directory.
func (c Command) WithCwd(dir string) Command { c.Cwd = dir; return c }

// WithStdin sets the bytes written to stdin.
func (c Command) WithStdin(b []byte) Command { c.Stdin = b; return c }

// WithTimeout sets the command's own timeout (see Command.Timeout).
func (c Command) WithTimeout(d time.Duration) Command { c.Timeout = d; return c }

// Checked makes a non-zero exit an *ExitError.
func (c Command) Checked() Command { c.Check = true; return c }

func (c Command) request(id string) *sandboxv1.ExecRequest {
	r := &sandboxv1.ExecRequest{
		SandboxId: id, Env: c.Env, Cwd: c.Cwd, Stdin: c.Stdin, MaxOutputBytes: c.MaxOutputBytes,
		Background: c.Background, KeepStdinOpen: c.KeepStdinOpen, Tag: c.Tag, RetainBytes: c.RetainBytes,
	}
	if c.Args != nil {
		r.Command = &sandboxv1.ExecRequest_Argv{Argv: &sandboxv1.Argv{Args: c.Args}}
	} else {
		r.Command = &sandboxv1.ExecRequest_Shell{Shell: c.Script}
	}
	if c.Timeout > 0 {
		r.Timeout = durationpb.New(c.Timeout)
	}
	if c.DiscardOverLimit {
		r.OutputLimitAction = sandboxv1.OutputLimitAction_OUTPUT_LIMIT_ACTION_DISCARD
	}
	if c.Pty != nil {
		r.Pty = &sandboxv1.PtySize{Rows: c.Pty.Rows, Cols: c.Pty.Cols, Term: c.Pty.Term}
	}
	return r
}

// Reason says what ended a command.
type Reason string

const (
	ReasonExited      Reason = "exited"
	ReasonTimeout     Reason = "timeout"      // Command.Timeout passed
	ReasonCancelled   Reason = "cancelled"    // the RPC ended first
	ReasonOutputLimit Reason = "output-limit" // MaxOutputBytes passed
	ReasonUnknown     Reason = "unknown"
)

// Result is how a command ended, with its output (Run) or without (Stream).
type Result struct {
	ExecID          string
	Stdout, Stderr  []byte
	ExitCode        int    // -1 when killed by a signal
	Signal          string // "SIGKILL", ... when killed by one
	Reason          Reason
	StdoutTruncated bool
	StderrTruncated bool
	Duration        time.Duration
}

// Success reports whether the command exited by itself with code 0.
func (r *Result) Success() bool { return r.Reason == ReasonExited && r.ExitCode == 0 && r.Signal == "" }

// EventKind says what an Event carries.
type EventKind int

const (
	EventStarted EventKind = iota + 1
	EventStdout
	EventStderr
	EventExited
)

// Event is one message of a command's output stream.
type Event struct {
	Kind   EventKind
	Data   []byte  // EventStdout, EventStderr
	Offset uint64  // of Data's first byte in its stream
	ExecID string  // EventStarted
	Pid    uint32  // EventStarted
	Exit   *Result // EventExited (without output)
}

func exitFrom(e *sandboxv1.ExecExited) *Result {
	r := &Result{ExitCode: -1, Signal: e.GetSignal(), StdoutTruncated: e.GetStdoutTruncated(), StderrTruncated: e.GetStderrTruncated()}
	if e.ExitCode != nil {
		r.ExitCode = int(e.GetExitCode())
	}
	if e.Duration != nil {
		r.Duration = e.Duration.AsDuration()
	}
	switch e.GetReason() {
	case sandboxv1.ExecExited_REASON_EXITED:
		r.Reason = ReasonExited
	case sandboxv1.ExecExited_REASON_TIMEOUT:
		r.Reason = ReasonTimeout
	case sandboxv1.ExecExited_REASON_CANCELLED:
		r.Reason = ReasonCancelled
	case sandboxv1.ExecExited_REASON_OUTPUT_LIMIT:
		r.Reason = ReasonOutputLimit
	default:
		r.Reason = ReasonUnknown
	}
	return r
}

type execEvent interface {
	GetOffset() uint64
	GetStarted() *sandboxv1.ExecStarted
	GetStdout() []byte
	GetStderr() []byte
	GetExited() *sandboxv1.ExecExited
}

func eventFrom(m execEvent) Event {
	switch {
	case m.GetStarted() != nil:
		return Event{Kind: EventStarted, ExecID: m.GetStarted().GetExecId(), Pid: m.GetStarted().GetPid()}
	case m.GetExited() != nil:
		return Event{Kind: EventExited, Exit: exitFrom(m.GetExited())}
	case m.GetStderr() != nil:
		return Event{Kind: EventStderr, Data: m.GetStderr(), Offset: m.GetOffset()}
	default:
		return Event{Kind: EventStdout, Data: m.GetStdout(), Offset: m.GetOffset()}
	}
}

// errStreamEnded is returned when a stream ends without its exited event.
var errStreamEnded = errors.New("sandboxd: stream ended before the command's exit")

func consume[M execEvent](recv func() (M, error), fn func(Event) error) (*Result, error) {
	var execID string
	for {
		m, err := recv()
		if err == io.EOF {
			return nil, errStreamEnded
		}
		if err != nil {
			return nil, wrapErr(err)
		}
		ev := eventFrom(m)
		if ev.Kind == EventStarted {
			execID = ev.ExecID
		}
		if ev.Kind == EventExited {
			ev.Exit.ExecID = execID
		}
		if fn != nil {
			if err := fn(ev); err != nil {
				return nil, err
			}
		}
		if ev.Kind == EventExited {
			return ev.Exit, nil
		}
	}
}

// Stream runs a command and calls fn for each event as it arrives (fn
// returning an error cancels the command). It returns how the command ended,
// without its output. It is never retried.
func (s *Sandbox) Stream(ctx context.Context, cmd Command, fn func(Event) error) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var st grpc.ServerStreamingClient[sandboxv1.ExecResponse]
	err := s.c.open(ctx, func() (err error) {
		st, err = s.c.rpc.Exec(ctx, cmd.request(s.ID))
		return err
	})
	if err != nil {
		return nil, withOp(err, "Exec")
	}
	res, err := consume(st.Recv, fn)
	if err != nil {
		return nil, withOp(err, "Exec")
	}
	if cmd.Check && !res.Success() {
		return res, &ExitError{res}
	}
	return res, nil
}

// Events runs a command and yields its events; breaking out of the loop
// cancels it. A failed call yields one final (zero Event, error).
func (s *Sandbox) Events(ctx context.Context, cmd Command) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		stop := errors.New("stop")
		_, err := s.Stream(ctx, cmd, func(e Event) error {
			if !yield(e, nil) {
				return stop
			}
			return nil
		})
		if err != nil && err != stop {
			var xe *ExitError
			if !errors.As(err, &xe) {
				yield(Event{}, err)
			}
		}
	}
}

// Run runs a command, collects its output and returns how it ended. A
// non-zero exit is not an error unless cmd.Check is set (*ExitError). It is
// never retried.
func (s *Sandbox) Run(ctx context.Context, cmd Command) (*Result, error) {
	var out, errb bytes.Buffer
	check := cmd.Check
	cmd.Check = false
	res, err := s.Stream(ctx, cmd, func(e Event) error {
		switch e.Kind {
		case EventStdout:
			out.Write(e.Data)
		case EventStderr:
			errb.Write(e.Data)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.Stdout, res.Stderr = out.Bytes(), errb.Bytes()
	if check && !res.Success() {
		return res, &ExitError{res}
	}
	return res, nil
}

// Text returns an event handler for Stream that hands fn the output as text,
// never splitting a UTF-8 character across calls (a character cut between
// two chunks is held back until it is whole). Invalid bytes are passed on
// as they are once it is clear they cannot start a character.
func Text(fn func(kind EventKind, text string)) func(Event) error {
	var out, errw *UTF8Writer
	out = NewUTF8Writer(writerFunc(func(p []byte) { fn(EventStdout, string(p)) }))
	errw = NewUTF8Writer(writerFunc(func(p []byte) { fn(EventStderr, string(p)) }))
	return func(e Event) error {
		switch e.Kind {
		case EventStdout:
			_, _ = out.Write(e.Data)
		case EventStderr:
			_, _ = errw.Write(e.Data)
		case EventExited:
			_ = out.Flush()
			_ = errw.Flush()
		}
		return nil
	}
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// UTF8Writer passes writes on to w with any incomplete UTF-8 character at
// the end held back until the next Write (or Flush), so w never sees a
// character split across writes.
type UTF8Writer struct {
	w       io.Writer
	pending []byte
}

// NewUTF8Writer wraps w.
func NewUTF8Writer(w io.Writer) *UTF8Writer { return &UTF8Writer{w: w} }

func (u *UTF8Writer) Write(p []byte) (int, error) {
	buf := append(u.pending, p...)
	cut := len(buf) - incompleteSuffix(buf)
	u.pending = append([]byte(nil), buf[cut:]...)
	if cut > 0 {
		if _, err := u.w.Write(buf[:cut]); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush writes what is held back (an incomplete character at the end of the
// output).
func (u *UTF8Writer) Flush() error {
	if len(u.pending) == 0 {
		return nil
	}
	p := u.pending
	u.pending = nil
	_, err := u.w.Write(p)
	return err
}

// incompleteSuffix is the length of a trailing partial UTF-8 sequence (0-3).
func incompleteSuffix(b []byte) int {
	for i := 1; i <= 3 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < 0x80 {
			return 0 // ASCII: complete
		}
		if c >= 0xC0 { // a lead byte: does its sequence fit?
			need := 0
			switch {
			case c >= 0xF0:
				need = 4
			case c >= 0xE0:
				need = 3
			default:
				need = 2
			}
			if need > i && !utf8.FullRune(b[len(b)-i:]) {
				return i
			}
			return 0
		}
	}
	return 0
}

// LineWriter calls fn once per complete line (without its "\n"), never
// splitting a UTF-8 character. Flush hands over a last line without "\n".
type LineWriter struct {
	fn  func(line string)
	buf []byte
}

// NewLineWriter returns a LineWriter calling fn.
func NewLineWriter(fn func(line string)) *LineWriter { return &LineWriter{fn: fn} }

func (l *LineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.fn(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// Flush hands over what is left after the last "\n", if anything.
func (l *LineWriter) Flush() error {
	if len(l.buf) > 0 {
		l.fn(string(l.buf))
		l.buf = nil
	}
	return nil
}
