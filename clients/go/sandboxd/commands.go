package sandboxd

import (
	"context"
	"time"

	"google.golang.org/grpc"

	sandboxv1 "sandboxd.dev/gen/go/sandbox/v1"
)

// CommandRef names a kept command by its exec id or its tag.
type CommandRef struct {
	ExecID string
	Tag    string
}

// ByTag names a kept command by tag.
func ByTag(tag string) CommandRef { return CommandRef{Tag: tag} }

// ByID names a kept command by exec id.
func ByID(execID string) CommandRef { return CommandRef{ExecID: execID} }

func (s *Sandbox) ref(r CommandRef) *sandboxv1.CommandRef {
	if r.Tag != "" {
		return &sandboxv1.CommandRef{SandboxId: s.ID, Command: &sandboxv1.CommandRef_Tag{Tag: r.Tag}}
	}
	return &sandboxv1.CommandRef{SandboxId: s.ID, Command: &sandboxv1.CommandRef_ExecId{ExecId: r.ExecID}}
}

// Start starts a kept command in the background (cmd.Background is set) and
// returns its exec id once it started; the command goes on after this
// returns. Read its output later with Attach.
func (s *Sandbox) Start(ctx context.Context, cmd Command) (CommandRef, error) {
	cmd.Background = true
	sctx, cancel := context.WithCancel(ctx)
	defer cancel() // detaches: the command goes on
	var st grpc.ServerStreamingClient[sandboxv1.ExecResponse]
	if err := s.c.open(sctx, func() (err error) { st, err = s.c.rpc.Exec(sctx, cmd.request(s.ID)); return err }); err != nil {
		return CommandRef{}, withOp(err, "Exec")
	}
	for {
		m, err := st.Recv()
		if err != nil {
			return CommandRef{}, withOp(wrapErr(err), "Exec")
		}
		if started := m.GetStarted(); started != nil {
			return CommandRef{ExecID: started.GetExecId(), Tag: cmd.Tag}, nil
		}
	}
}

// AttachOptions tune Attach.
type AttachOptions struct {
	StdoutOffset, StderrOffset uint64
	// FromEarliest starts at the earliest output still kept when an offset
	// was dropped (instead of ErrOutOfRange).
	FromEarliest bool
}

// Attach streams a kept command's output from the given offsets (stored
// output first, then live) until it exits; cancelling ctx detaches.
func (s *Sandbox) Attach(ctx context.Context, cmd CommandRef, o AttachOptions, fn func(Event) error) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := s.c.rpc.Attach(ctx, &sandboxv1.AttachRequest{Command: s.ref(cmd), StdoutOffset: o.StdoutOffset, StderrOffset: o.StderrOffset, FromEarliest: o.FromEarliest})
	if err != nil {
		return nil, withOp(wrapErr(err), "Attach")
	}
	res, err := consume(st.Recv, fn)
	return res, withOp(err, "Attach")
}

// WriteInput writes data to a kept command's stdin (Command.KeepStdinOpen),
// closing it afterwards when close is set.
func (s *Sandbox) WriteInput(ctx context.Context, cmd CommandRef, data []byte, close bool) error {
	return withOp(s.c.once(ctx, func(ctx context.Context) error {
		_, err := s.c.rpc.WriteInput(ctx, &sandboxv1.WriteInputRequest{Command: s.ref(cmd), Data: data, Close: close})
		return err
	}), "WriteInput")
}

// InputStream is an open StreamInput call: each Write goes to the command's
// stdin as it is made. Close closes the stream (and the command's stdin when
// CloseStdin was called).
type InputStream struct {
	st interface {
		Send(*sandboxv1.StreamInputRequest) error
		CloseAndRecv() (*sandboxv1.StreamInputResponse, error)
	}
	cancel context.CancelFunc
}

// StreamInput opens a stdin stream to a kept command (the fast path for typing).
func (s *Sandbox) StreamInput(ctx context.Context, cmd CommandRef) (*InputStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	st, err := s.c.rpc.StreamInput(ctx)
	if err == nil {
		err = st.Send(&sandboxv1.StreamInputRequest{Command: s.ref(cmd)})
	}
	if err != nil {
		cancel()
		return nil, withOp(wrapErr(err), "StreamInput")
	}
	return &InputStream{st: st, cancel: cancel}, nil
}

func (in *InputStream) Write(p []byte) (int, error) {
	if err := in.st.Send(&sandboxv1.StreamInputRequest{Data: append([]byte(nil), p...)}); err != nil {
		_, err = in.st.CloseAndRecv()
		return 0, withOp(wrapErr(err), "StreamInput")
	}
	return len(p), nil
}

// CloseStdin closes the command's stdin (it sees end of file).
func (in *InputStream) CloseStdin() error {
	return withOp(wrapErr(in.st.Send(&sandboxv1.StreamInputRequest{Close: true})), "StreamInput")
}

// Close ends the stream.
func (in *InputStream) Close() error {
	defer in.cancel()
	_, err := in.st.CloseAndRecv()
	return withOp(wrapErr(err), "StreamInput")
}

// Signal sends a signal ("INT", "SIGTERM", "KILL", ...) to a kept command's
// process group.
func (s *Sandbox) Signal(ctx context.Context, cmd CommandRef, signal string) error {
	return withOp(s.c.once(ctx, func(ctx context.Context) error {
		_, err := s.c.rpc.SignalCommand(ctx, &sandboxv1.SignalCommandRequest{Command: s.ref(cmd), Signal: signal})
		return err
	}), "SignalCommand")
}

// ResizePty changes a PTY command's window size.
func (s *Sandbox) ResizePty(ctx context.Context, cmd CommandRef, size PtySize) error {
	return withOp(s.c.once(ctx, func(ctx context.Context) error {
		_, err := s.c.rpc.ResizePty(ctx, &sandboxv1.ResizePtyRequest{Command: s.ref(cmd), Size: &sandboxv1.PtySize{Rows: size.Rows, Cols: size.Cols, Term: size.Term}})
		return err
	}), "ResizePty")
}

// CommandInfo describes a kept command.
type CommandInfo struct {
	ExecID, Tag    string
	Args           []string
	StartedAt      time.Time
	Running        bool
	Exit           *Result // once it ended
	StdoutEarliest uint64
	StdoutEnd      uint64
	StderrEarliest uint64
	StderrEnd      uint64
	Pty            bool
	Pid            uint32
}

// ListCommands returns the sandbox's kept commands, newest first.
func (s *Sandbox) ListCommands(ctx context.Context) ([]CommandInfo, error) {
	var resp *sandboxv1.ListCommandsResponse
	err := s.c.unary(ctx, func(ctx context.Context) (err error) {
		resp, err = s.c.rpc.ListCommands(ctx, &sandboxv1.ListCommandsRequest{SandboxId: s.ID})
		return err
	})
	if err != nil {
		return nil, withOp(err, "ListCommands")
	}
	var out []CommandInfo
	for _, c := range resp.GetCommands() {
		ci := CommandInfo{ExecID: c.GetExecId(), Tag: c.GetTag(), Args: c.GetArgs(), Running: c.GetRunning(),
			StdoutEarliest: c.GetStdoutEarliest(), StdoutEnd: c.GetStdoutEnd(), StderrEarliest: c.GetStderrEarliest(), StderrEnd: c.GetStderrEnd(),
			Pty: c.GetPty(), Pid: c.GetPid()}
		if c.StartedAt != nil {
			ci.StartedAt = c.StartedAt.AsTime()
		}
		if c.Exited != nil {
			ci.Exit = exitFrom(c.Exited)
			ci.Exit.ExecID = ci.ExecID
		}
		out = append(out, ci)
	}
	return out, nil
}
