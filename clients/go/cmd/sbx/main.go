// Command sbx is a command-line client for sandboxd.
//
//	sbx create [--cores N] [--memory MiB] [--disk GiB] [--label k=v]... [--ttl 10m] [--internet]
//	sbx ls [--label k=v]...
//	sbx exec ID [--env K=V]... [--cwd DIR] [--timeout 30s] -- cmd args...
//	sbx cp LOCAL ID:REMOTE | sbx cp ID:REMOTE LOCAL
//	sbx rm ID...
//	sbx keepalive ID [--ttl 10m] [--follow]
//	sbx shell ID [--cmd bash]
//
// The address comes from --addr or SANDBOXD_ADDR (default 127.0.0.1:8080),
// the API token from SANDBOXD_TOKEN; --ca, --cert and --key select TLS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"sandboxd.dev/clients/go/sandboxd"
)

const usage = `usage: sbx [--addr HOST:PORT] [--ca FILE] [--cert FILE --key FILE] COMMAND ...

commands:
  create [--cores N] [--memory MiB] [--disk GiB] [--label k=v]... [--ttl 10m] [--internet]
                                   make a sandbox and print its id
  ls [--label k=v]...              list sandboxes
  exec ID [--env K=V]... [--cwd DIR] [--timeout D] -- CMD ARGS...
                                   run a command, stream its output, exit with its code
  cp LOCAL ID:REMOTE               upload a file (a directory: as a new directory)
  cp ID:REMOTE LOCAL               download a file
  rm ID...                         destroy sandboxes
  keepalive ID [--ttl D] [--follow]
                                   renew a lease (with --follow: every TTL/3 until Ctrl-C)
  shell ID [--cmd PROGRAM]         interactive terminal in the sandbox

environment: SANDBOXD_ADDR (default 127.0.0.1:8080), SANDBOXD_TOKEN
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	global := flag.NewFlagSet("sbx", flag.ContinueOnError)
	global.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	defAddr := os.Getenv("SANDBOXD_ADDR")
	if defAddr == "" {
		defAddr = "127.0.0.1:8080"
	}
	addr := global.String("addr", defAddr, "sandboxd address")
	ca := global.String("ca", "", "CA certificate file (TLS)")
	cert := global.String("cert", "", "client certificate file (mutual TLS)")
	key := global.String("key", "", "client key file (mutual TLS)")
	if err := global.Parse(args); err != nil {
		return 2
	}
	rest := global.Args()
	if len(rest) == 0 {
		global.Usage()
		return 2
	}
	var opts []sandboxd.Option
	if *ca != "" {
		opts = append(opts, sandboxd.WithTLS(*ca))
	}
	if *cert != "" || *key != "" {
		opts = append(opts, sandboxd.WithClientCert(*cert, *key))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := sandboxd.Dial(ctx, *addr, opts...)
	if err != nil {
		return fail(err)
	}
	defer c.Close()

	cmd, cargs := rest[0], rest[1:]
	switch cmd {
	case "create":
		return cmdCreate(ctx, c, cargs)
	case "ls", "list":
		return cmdList(ctx, c, cargs)
	case "exec":
		return cmdExec(ctx, c, cargs)
	case "cp":
		return cmdCopy(ctx, c, cargs)
	case "rm":
		return cmdRemove(ctx, c, cargs)
	case "keepalive":
		return cmdKeepAlive(ctx, c, cargs)
	case "shell":
		return cmdShell(ctx, c, cargs)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "sbx: unknown command %q\n\n%s", cmd, usage)
	return 2
}

func fail(err error) int {
	fmt.Fprintf(os.Stderr, "sbx: %v\n", err)
	return 1
}

// parse parses flags and positional arguments in any order (the flag
// package alone stops at the first positional one); it returns the
// positional arguments. Callers cut at "--" first (see split).
func parse(fs *flag.FlagSet, args []string) (pos, _ []string, err error) {
	fs.SetOutput(os.Stderr)
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// split cuts args at the first "--".
func split(args []string) (before, after []string, found bool) {
	for i, a := range args {
		if a == "--" {
			return args[:i], args[i+1:], true
		}
	}
	return args, nil, false
}

type labelFlag map[string]string

func (l labelFlag) String() string { return "" }
func (l labelFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	l[k] = val
	return nil
}

func cmdCreate(ctx context.Context, c *sandboxd.Client, args []string) int {
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	cores := fs.Uint("cores", 0, "CPU cores (0: server default)")
	mem := fs.Uint("memory", 0, "memory in MiB (0: server default)")
	disk := fs.Uint("disk", 0, "disk in GiB (0: server default)")
	ttl := fs.Duration("ttl", 10*time.Minute, "lease TTL")
	internet := fs.Bool("internet", false, "allow access to the internet")
	labels := labelFlag{}
	fs.Var(labels, "label", "label key=value (repeatable)")
	if _, _, err := parse(fs, args); err != nil {
		return 2
	}
	sb, err := c.Create(ctx, sandboxd.CreateOptions{
		Resources: sandboxd.Resources{Cores: uint32(*cores), MemoryMiB: uint32(*mem), DiskGiB: uint32(*disk)},
		Labels:    labels, LeaseTTL: *ttl, InternetAccess: *internet, NoKeepAlive: true,
	})
	if err != nil {
		return fail(err)
	}
	fmt.Println(sb.ID)
	return 0
}

func cmdList(ctx context.Context, c *sandboxd.Client, args []string) int {
	fs := flag.NewFlagSet("ls", flag.ContinueOnError)
	labels := labelFlag{}
	fs.Var(labels, "label", "only sandboxes with this label key=value (repeatable)")
	if _, _, err := parse(fs, args); err != nil {
		return 2
	}
	list, err := c.List(ctx, labels)
	if err != nil {
		return fail(err)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tCORES\tMEMORY\tDISK\tEXPIRES IN\tLABELS")
	for _, s := range list {
		keys := make([]string, 0, len(s.Labels))
		for k := range s.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var ls []string
		for _, k := range keys {
			ls = append(ls, k+"="+s.Labels[k])
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d MiB\t%d GiB\t%s\t%s\n", s.ID, s.State, s.Resources.Cores, s.Resources.MemoryMiB, s.Resources.DiskGiB,
			time.Until(s.LeaseExpiresAt).Round(time.Second), strings.Join(ls, ","))
	}
	tw.Flush()
	return 0
}

type envFlag map[string]string

func (e envFlag) String() string     { return "" }
func (e envFlag) Set(v string) error { return labelFlag(e).Set(v) }

func cmdExec(ctx context.Context, c *sandboxd.Client, args []string) int {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	env := envFlag{}
	fs.Var(env, "env", "environment variable K=V (repeatable)")
	cwd := fs.String("cwd", "", "working directory")
	timeout := fs.Duration("timeout", 0, "kill the command after this long")
	shell := fs.Bool("sh", false, "run the arguments as one bash command line")
	before, command, _ := split(args)
	pos, _, err := parse(fs, before)
	if err != nil {
		return 2
	}
	if len(pos) > 1 && len(command) == 0 {
		command = pos[1:]
	}
	if len(pos) < 1 || len(command) == 0 {
		fmt.Fprintln(os.Stderr, "usage: sbx exec ID [--env K=V] [--cwd DIR] [--timeout D] -- CMD ARGS...")
		return 2
	}
	cmd := sandboxd.Argv(command...)
	if *shell {
		cmd = sandboxd.Shell(strings.Join(command, " "))
	}
	cmd.Env, cmd.Cwd, cmd.Timeout = env, *cwd, *timeout
	sb := handle(c, pos[0])
	res, err := sb.Stream(ctx, cmd, func(e sandboxd.Event) error {
		switch e.Kind {
		case sandboxd.EventStdout:
			os.Stdout.Write(e.Data)
		case sandboxd.EventStderr:
			os.Stderr.Write(e.Data)
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	return exitCode(res)
}

// handle returns a Sandbox handle without a round trip; the first call on
// it reports a missing sandbox.
func handle(c *sandboxd.Client, id string) *sandboxd.Sandbox {
	return c.Handle(id)
}

func exitCode(r *sandboxd.Result) int {
	if r.Signal != "" {
		if n := unix.SignalNum(r.Signal); n != 0 {
			return 128 + int(n)
		}
		return 137
	}
	if r.ExitCode < 0 {
		return 1
	}
	return r.ExitCode
}

// remote splits "ID:PATH"; ok is false for a local path.
func remote(arg string) (id, path string, ok bool) {
	id, path, ok = strings.Cut(arg, ":")
	if !ok || id == "" || strings.ContainsAny(id, `/\.`) {
		return "", "", false
	}
	return id, path, true
}

func cmdCopy(ctx context.Context, c *sandboxd.Client, args []string) int {
	fs := flag.NewFlagSet("cp", flag.ContinueOnError)
	quiet := fs.Bool("q", false, "no progress bar")
	pos, _, err := parse(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 2 {
		fmt.Fprintln(os.Stderr, "usage: sbx cp LOCAL ID:REMOTE | sbx cp ID:REMOTE LOCAL")
		return 2
	}
	bar := newBar(!*quiet && term.IsTerminal(int(os.Stderr.Fd())))
	if id, p, ok := remote(pos[1]); ok {
		if _, _, both := remote(pos[0]); both {
			fmt.Fprintln(os.Stderr, "sbx: cp between two sandboxes is not supported")
			return 2
		}
		sb := handle(c, id)
		if st, err := os.Stat(pos[0]); err == nil && st.IsDir() {
			res, err := sb.UploadDir(ctx, pos[0], p, sandboxd.ArchiveOptions{MakeParents: true})
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(os.Stderr, "uploaded %d entries (%d bytes of files)\n", res.Entries, res.FileBytes)
			return 0
		}
		res, err := sb.UploadFile(ctx, pos[0], p, sandboxd.UploadOptions{MakeParents: true, Progress: bar.update})
		bar.done()
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(os.Stderr, "uploaded %d bytes, sha256 %s\n", res.Bytes, res.SHA256)
		return 0
	}
	if id, p, ok := remote(pos[0]); ok {
		sb := handle(c, id)
		res, err := sb.DownloadFile(ctx, p, pos[1], sandboxd.DownloadOptions{Progress: bar.update})
		bar.done()
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(os.Stderr, "downloaded %d bytes, sha256 %s\n", res.Bytes, res.SHA256)
		return 0
	}
	fmt.Fprintln(os.Stderr, "sbx: one side of cp must be ID:PATH")
	return 2
}

// bar is a progress bar on stderr.
type bar struct {
	on   bool
	mu   sync.Mutex
	last time.Time
	drew bool
}

func newBar(on bool) *bar { return &bar{on: on} }

func (b *bar) update(done, total int64) {
	if !b.on {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.last) < 100*time.Millisecond && done != total {
		return
	}
	b.last = time.Now()
	b.drew = true
	const width = 30
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	if total <= 0 {
		fmt.Fprintf(os.Stderr, "\r%8.1f MiB", mib(done))
		return
	}
	filled := int(float64(width) * float64(done) / float64(total))
	fmt.Fprintf(os.Stderr, "\r[%s%s] %3d%% %.1f/%.1f MiB", strings.Repeat("#", filled), strings.Repeat(" ", width-filled),
		done*100/total, mib(done), mib(total))
}

func (b *bar) done() {
	if b.drew {
		fmt.Fprintln(os.Stderr)
	}
}

func cmdRemove(ctx context.Context, c *sandboxd.Client, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: sbx rm ID...")
		return 2
	}
	code := 0
	for _, id := range args {
		if err := c.Destroy(ctx, id); err != nil {
			fail(err)
			code = 1
			continue
		}
		fmt.Println(id)
	}
	return code
}

func cmdKeepAlive(ctx context.Context, c *sandboxd.Client, args []string) int {
	fs := flag.NewFlagSet("keepalive", flag.ContinueOnError)
	ttl := fs.Duration("ttl", 0, "new lease TTL (0: keep the current one)")
	follow := fs.Bool("follow", false, "keep renewing every TTL/3 until interrupted")
	pos, _, err := parse(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(os.Stderr, "usage: sbx keepalive ID [--ttl D] [--follow]")
		return 2
	}
	for {
		exp, err := c.KeepAlive(ctx, pos[0], *ttl)
		if err != nil {
			if *follow && ctx.Err() != nil {
				return 0
			}
			return fail(err)
		}
		fmt.Printf("%s lease expires %s (in %s)\n", pos[0], exp.Local().Format(time.RFC3339), time.Until(exp).Round(time.Second))
		if !*follow {
			return 0
		}
		every := *ttl / 3
		if every <= 0 {
			every = time.Until(exp) / 3
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(every):
		}
	}
}

func cmdShell(ctx context.Context, c *sandboxd.Client, args []string) int {
	fs := flag.NewFlagSet("shell", flag.ContinueOnError)
	program := fs.String("cmd", "bash -l", "command line to run")
	pos, _, err := parse(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(os.Stderr, "usage: sbx shell ID [--cmd PROGRAM]")
		return 2
	}
	sb := handle(c, pos[0])
	in, out := int(os.Stdin.Fd()), int(os.Stdout.Fd())
	size := &sandboxd.PtySize{Rows: 24, Cols: 80, Term: os.Getenv("TERM")}
	if w, h, err := term.GetSize(out); err == nil {
		size.Rows, size.Cols = uint32(h), uint32(w)
	}
	cmd := sandboxd.Shell(*program)
	cmd.Pty, cmd.KeepStdinOpen = size, true

	var restore func()
	if term.IsTerminal(in) {
		old, err := term.MakeRaw(in)
		if err != nil {
			return fail(err)
		}
		restore = func() { _ = term.Restore(in, old) }
		defer restore()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := make(chan sandboxd.CommandRef, 1)
	type outcome struct {
		res *sandboxd.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := sb.Stream(ctx, cmd, func(e sandboxd.Event) error {
			switch e.Kind {
			case sandboxd.EventStarted:
				started <- sandboxd.ByID(e.ExecID)
			case sandboxd.EventStdout, sandboxd.EventStderr:
				os.Stdout.Write(e.Data)
			}
			return nil
		})
		done <- outcome{res, err}
	}()
	var ref sandboxd.CommandRef
	select {
	case ref = <-started:
	case o := <-done:
		if restore != nil {
			restore()
		}
		if o.err != nil {
			return fail(o.err)
		}
		return exitCode(o.res)
	}
	input, err := sb.StreamInput(ctx, ref)
	if err != nil {
		cancel()
		if restore != nil {
			restore()
		}
		return fail(err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := os.Stdin.Read(buf)
			if n > 0 {
				if _, werr := input.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err == io.EOF {
				_ = input.CloseStdin()
				return
			}
			if err != nil {
				return
			}
		}
	}()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	for {
		select {
		case <-winch:
			if w, h, err := term.GetSize(out); err == nil {
				_ = sb.ResizePty(ctx, ref, sandboxd.PtySize{Rows: uint32(h), Cols: uint32(w), Term: size.Term})
			}
		case o := <-done:
			_ = input.Close()
			if restore != nil {
				restore()
			}
			if o.err != nil && !errors.Is(o.err, context.Canceled) {
				return fail(o.err)
			}
			if o.res == nil {
				return 1
			}
			return exitCode(o.res)
		}
	}
}
