// Command datago is the Go client of the data-path benchmark: a long-lived
// program, started and driven by bench/data-path.ts over stdin/stdout, that
// measures sandboxd's data path (exec round trips, streamed output, uploads,
// downloads, concurrent commands) the way a Go user's service sees it,
// through the Go client library sandboxd.dev/clients/go/sandboxd.
//
// Environment: SANDBOXD_ADDR (host:port, plaintext) and SANDBOX_ID (a sandbox
// the orchestrator made and owns: this program neither renews its lease nor
// destroys it).
//
// Protocol: after dialing once and attaching to the sandbox it prints
// {"ready":true}; then it reads one JSON command per line from stdin and
// answers each with exactly one JSON line on stdout:
//
//	{"op":"exec","n":30}                                  -> {"ms":[...]}
//	{"op":"stream","bytes":N}                             -> {"ms":t,"bytes":count}
//	{"op":"upload","local":"/host/f","remote":"/home/sandbox/x"}   -> {"ms":t,"bytes":n}
//	{"op":"download","remote":"/home/sandbox/x","local":"/host/f"} -> {"ms":t,"bytes":n}
//	{"op":"concurrent","n":100,"args":["sh","-c","..."]}  -> {"ms":[...],"failures":k}
//	{"op":"quit"}                                         -> {"ok":true}
//
// A failed op answers {"error":"message"} and the program keeps serving.
// Times are milliseconds (float, ns precision). Logs go to stderr only.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"sync"
	"time"

	"sandboxd.dev/clients/go/sandboxd"
)

type request struct {
	Op     string   `json:"op"`
	N      int      `json:"n"`
	Bytes  int64    `json:"bytes"`
	Local  string   `json:"local"`
	Remote string   `json:"remote"`
	Args   []string `json:"args"`
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// exitErr describes a command that did not exit 0.
func exitErr(res *sandboxd.Result) error {
	if res.Signal != "" {
		return fmt.Errorf("command killed by %s (reason %s)", res.Signal, res.Reason)
	}
	return fmt.Errorf("command exited %d (reason %s)", res.ExitCode, res.Reason)
}

type server struct {
	sb *sandboxd.Sandbox
}

// exec: n sequential Run(["true"]) calls, each timed end to end.
func (s *server) exec(ctx context.Context, r request) (any, error) {
	if r.N <= 0 {
		return nil, errors.New("exec: n must be > 0")
	}
	out := make([]float64, 0, r.N)
	for i := 0; i < r.N; i++ {
		t0 := time.Now()
		res, err := s.sb.Run(ctx, sandboxd.Argv("true"))
		d := time.Since(t0)
		if err != nil {
			return nil, fmt.Errorf("exec %d: %w", i, err)
		}
		if !res.Success() {
			return nil, fmt.Errorf("exec %d: %w", i, exitErr(res))
		}
		out = append(out, ms(d))
	}
	return map[string]any{"ms": out}, nil
}

// stream: head -c N /dev/zero through Stream, counting stdout bytes as they
// arrive and dropping them (nothing is kept in memory).
func (s *server) stream(ctx context.Context, r request) (any, error) {
	if r.Bytes < 0 {
		return nil, errors.New("stream: bytes must be >= 0")
	}
	var count int64
	t0 := time.Now()
	res, err := s.sb.Stream(ctx, sandboxd.Argv("head", "-c", strconv.FormatInt(r.Bytes, 10), "/dev/zero"), func(e sandboxd.Event) error {
		if e.Kind == sandboxd.EventStdout {
			count += int64(len(e.Data))
		}
		return nil
	})
	d := time.Since(t0)
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	if !res.Success() {
		return nil, fmt.Errorf("stream: %w", exitErr(res))
	}
	return map[string]any{"ms": ms(d), "bytes": count}, nil
}

// upload: Upload streaming from the *os.File (default options and chunk size).
func (s *server) upload(ctx context.Context, r request) (any, error) {
	if r.Local == "" || r.Remote == "" {
		return nil, errors.New("upload: local and remote are required")
	}
	f, err := os.Open(r.Local)
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	defer f.Close()
	t0 := time.Now()
	res, err := s.sb.Upload(ctx, r.Remote, f, sandboxd.UploadOptions{})
	d := time.Since(t0)
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	return map[string]any{"ms": ms(d), "bytes": res.Bytes}, nil
}

// download: Download streaming into a newly created *os.File, closed before
// answering.
func (s *server) download(ctx context.Context, r request) (any, error) {
	if r.Local == "" || r.Remote == "" {
		return nil, errors.New("download: local and remote are required")
	}
	f, err := os.Create(r.Local)
	if err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	t0 := time.Now()
	res, err := s.sb.Download(ctx, r.Remote, f, sandboxd.DownloadOptions{})
	d := time.Since(t0)
	cerr := f.Close()
	if err != nil {
		_ = os.Remove(r.Local)
		return nil, fmt.Errorf("download: %w", err)
	}
	if cerr != nil {
		return nil, fmt.Errorf("download: closing %s: %w", r.Local, cerr)
	}
	return map[string]any{"ms": ms(d), "bytes": res.Bytes}, nil
}

// concurrent: n Runs of args started at once, each timed from its own start;
// each must exit 0 with stdout exactly "ok\n".
func (s *server) concurrent(ctx context.Context, r request) (any, error) {
	if r.N <= 0 {
		return nil, errors.New("concurrent: n must be > 0")
	}
	if len(r.Args) == 0 {
		return nil, errors.New("concurrent: args are required")
	}
	times := make([]float64, r.N)
	errs := make([]error, r.N)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < r.N; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			t0 := time.Now()
			res, err := s.sb.Run(ctx, sandboxd.Argv(r.Args...))
			times[i] = ms(time.Since(t0))
			switch {
			case err != nil:
				errs[i] = err
			case !res.Success():
				errs[i] = exitErr(res)
			case string(res.Stdout) != "ok\n":
				errs[i] = fmt.Errorf("stdout %q, want %q", res.Stdout, "ok\n")
			}
		}(i)
	}
	close(start)
	wg.Wait()
	failures := 0
	for i, err := range errs {
		if err != nil {
			if failures < 5 {
				log.Printf("concurrent run %d failed: %v", i, err)
			}
			failures++
		}
	}
	if failures > 5 {
		log.Printf("concurrent: %d runs failed in all", failures)
	}
	return map[string]any{"ms": times, "failures": failures}, nil
}

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("datago: ")
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out) // Encode ends each value with a newline
	enc.SetEscapeHTML(false)
	reply := func(v any) {
		if err := enc.Encode(v); err != nil {
			log.Fatalf("encoding an answer: %v", err)
		}
		if err := out.Flush(); err != nil {
			log.Fatalf("writing stdout: %v", err)
		}
	}
	fail := func(err error) {
		log.Print(err)
		reply(map[string]string{"error": err.Error()})
	}

	ctx := context.Background()
	addr, id := os.Getenv("SANDBOXD_ADDR"), os.Getenv("SANDBOX_ID")
	if addr == "" || id == "" {
		fail(errors.New("SANDBOXD_ADDR and SANDBOX_ID must be set"))
		os.Exit(1)
	}
	c, err := sandboxd.Dial(ctx, addr) // plaintext; one connection for the program's life
	if err != nil {
		fail(err)
		os.Exit(1)
	}
	defer c.Close()
	// Get attaches without renewing the lease; never Close it (that would
	// destroy the sandbox, which the orchestrator owns).
	sb, err := c.Get(ctx, id)
	if err != nil {
		fail(fmt.Errorf("attaching to sandbox %s: %w", id, err))
		os.Exit(1)
	}
	defer sb.Detach()
	reply(map[string]bool{"ready": true})

	s := &server{sb: sb}
	in := bufio.NewReader(os.Stdin)
	for {
		line, rerr := in.ReadBytes('\n')
		if len(line) > 0 && !(len(line) == 1 && line[0] == '\n') {
			var r request
			if err := json.Unmarshal(line, &r); err != nil {
				fail(fmt.Errorf("bad command %q: %w", line, err))
				continue
			}
			var ans any
			switch r.Op {
			case "exec":
				ans, err = s.exec(ctx, r)
			case "stream":
				ans, err = s.stream(ctx, r)
			case "upload":
				ans, err = s.upload(ctx, r)
			case "download":
				ans, err = s.download(ctx, r)
			case "concurrent":
				ans, err = s.concurrent(ctx, r)
			case "quit":
				reply(map[string]bool{"ok": true})
				sb.Detach()
				c.Close()
				os.Exit(0)
			default:
				err = fmt.Errorf("unknown op %q", r.Op)
			}
			if err != nil {
				fail(err)
			} else {
				reply(ans)
			}
		}
		if rerr == io.EOF {
			log.Print("stdin closed; exiting")
			return
		}
		if rerr != nil {
			log.Fatalf("reading stdin: %v", rerr)
		}
	}
}
