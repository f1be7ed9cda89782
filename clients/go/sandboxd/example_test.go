package sandboxd_test

// These examples need a running sandboxd (SANDBOXD_ADDR); they have no
// Output lines, so `go test` compiles them without running them.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"sandboxd.dev/clients/go/sandboxd"
)

func Example() {
	ctx := context.Background()
	c, err := sandboxd.Dial(ctx, os.Getenv("SANDBOXD_ADDR")) // token from SANDBOXD_TOKEN
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	sb, err := c.Create(ctx, sandboxd.CreateOptions{LeaseTTL: time.Minute, Labels: map[string]string{"app": "demo"}})
	if err != nil {
		log.Fatal(err)
	}
	defer sb.Close() // destroys it; the lease is renewed until then

	res, err := sb.Run(ctx, sandboxd.Shell("echo hello from $(hostname)").Checked())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(res.Stdout))
}

func ExampleDial() {
	ctx := context.Background()
	c, err := sandboxd.Dial(ctx, "sandboxd.example.com:443",
		sandboxd.WithTLS("/etc/sandboxd/ca.pem"),
		sandboxd.WithToken(os.Getenv("MY_TOKEN")),
		sandboxd.WithCallTimeout(30*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

func ExampleClient_Create() {
	ctx := context.Background()
	c, _ := sandboxd.Dial(ctx, os.Getenv("SANDBOXD_ADDR"))
	sb, err := c.Create(ctx, sandboxd.CreateOptions{
		Resources: sandboxd.Resources{Cores: 2, MemoryMiB: 1024, DiskGiB: 4},
		LeaseTTL:  30 * time.Second, // renewed every 10 s while sb is open
		OnLeaseError: func(err error) {
			log.Printf("lease renewal failed (retried at the next tick): %v", err)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sb.Close()
}

func ExampleSandbox_Run() {
	ctx := context.Background()
	c, _ := sandboxd.Dial(ctx, os.Getenv("SANDBOXD_ADDR"))
	sb, _ := c.Create(ctx, sandboxd.CreateOptions{})
	defer sb.Close()

	cmd := sandboxd.Argv("python3", "-c", "import os; print(os.environ['GREETING'])").
		WithEnv("GREETING", "hi").
		WithTimeout(10 * time.Second). // the command's own limit
		Checked()                      // non-zero exit: *ExitError
	res, err := sb.Run(ctx, cmd)
	var exit *sandboxd.ExitError
	switch {
	case errors.As(err, &exit):
		fmt.Printf("failed with %d: %s", exit.ExitCode, exit.Stderr)
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Print(string(res.Stdout))
	}
}

func ExampleSandbox_Stream() {
	ctx := context.Background()
	c, _ := sandboxd.Dial(ctx, os.Getenv("SANDBOXD_ADDR"))
	sb, _ := c.Create(ctx, sandboxd.CreateOptions{})
	defer sb.Close()

	// Text never splits a UTF-8 character across calls.
	res, err := sb.Stream(ctx, sandboxd.Shell("for i in 1 2 3; do echo €$i; sleep 1; done"),
		sandboxd.Text(func(kind sandboxd.EventKind, text string) {
			if kind == sandboxd.EventStdout {
				fmt.Print(text)
			}
		}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("exit code", res.ExitCode)
}

func ExampleSandbox_Events() {
	ctx := context.Background()
	c, _ := sandboxd.Dial(ctx, os.Getenv("SANDBOXD_ADDR"))
	sb, _ := c.Create(ctx, sandboxd.CreateOptions{})
	defer sb.Close()

	lines := sandboxd.NewLineWriter(func(line string) { fmt.Println("line:", line) })
	for ev, err := range sb.Events(ctx, sandboxd.Shell("seq 3")) {
		if err != nil {
			log.Fatal(err)
		}
		if ev.Kind == sandboxd.EventStdout {
			lines.Write(ev.Data)
		}
	}
	lines.Flush()
}

func ExampleSandbox_Upload() {
	ctx := context.Background()
	c, _ := sandboxd.Dial(ctx, os.Getenv("SANDBOXD_ADDR"))
	sb, _ := c.Create(ctx, sandboxd.CreateOptions{})
	defer sb.Close()

	res, err := sb.Upload(ctx, "data/input.txt", strings.NewReader("hello\n"), sandboxd.UploadOptions{
		Mode: 0o600, MakeParents: true,
		Progress: func(done, total int64) { fmt.Printf("%d/%d\n", done, total) },
	})
	if err != nil {
		log.Fatal(err) // a checksum mismatch is sandboxd.ErrChecksum
	}
	fmt.Println(res.SHA256)
}

func ExampleSandbox_Download() {
	ctx := context.Background()
	c, _ := sandboxd.Dial(ctx, os.Getenv("SANDBOXD_ADDR"))
	sb, _ := c.Create(ctx, sandboxd.CreateOptions{})
	defer sb.Close()

	// Verified against the server's sha256; a cut-off stream resumes from
	// the byte it reached.
	res, err := sb.DownloadFile(ctx, "/etc/os-release", "os-release", sandboxd.DownloadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Bytes, res.SHA256, res.Resumes)
}

func ExampleSandbox_UploadArchive() {
	ctx := context.Background()
	c, _ := sandboxd.Dial(ctx, os.Getenv("SANDBOXD_ADDR"))
	sb, _ := c.Create(ctx, sandboxd.CreateOptions{})
	defer sb.Close()

	f, err := os.Open("repo.tar.gz")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if _, err := sb.UploadArchive(ctx, "repo", f, sandboxd.ArchiveOptions{Gzip: true, Replace: true}); err != nil {
		log.Fatal(err)
	}
	var tarball bytes.Buffer
	if _, err := sb.DownloadArchive(ctx, "repo", &tarball, sandboxd.ArchiveOptions{}); err != nil {
		log.Fatal(err)
	}
}

func ExampleSandbox_ListDir() {
	ctx := context.Background()
	c, _ := sandboxd.Dial(ctx, os.Getenv("SANDBOXD_ADDR"))
	sb, _ := c.Create(ctx, sandboxd.CreateOptions{})
	defer sb.Close()

	if err := sb.MakeDir(ctx, "work/src", true, 0); err != nil {
		log.Fatal(err)
	}
	if err := sb.MakeDir(ctx, "work/src", false, 0); errors.Is(err, sandboxd.ErrAlreadyExists) {
		fmt.Println("already there")
	}
	for fi, err := range sb.WalkDir(ctx, "work", 8) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(fi.Path, fi.Type, fi.Size)
	}
}

func ExampleSandbox_Start() {
	ctx := context.Background()
	c, _ := sandboxd.Dial(ctx, os.Getenv("SANDBOXD_ADDR"))
	sb, _ := c.Create(ctx, sandboxd.CreateOptions{})
	defer sb.Close()

	cmd := sandboxd.Shell("python3 -m http.server 8000")
	cmd.Tag = "web"
	if _, err := sb.Start(ctx, cmd); err != nil {
		log.Fatal(err)
	}
	// ... later, from anywhere: read what it printed so far and follow it.
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, _ = sb.Attach(actx, sandboxd.ByTag("web"), sandboxd.AttachOptions{}, func(e sandboxd.Event) error {
		os.Stdout.Write(e.Data)
		return nil
	})
	_ = sb.Signal(ctx, sandboxd.ByTag("web"), "TERM")
}

func ExampleClient_Get() {
	ctx := context.Background()
	c, _ := sandboxd.Dial(ctx, os.Getenv("SANDBOXD_ADDR"))
	sb, err := c.Get(ctx, "sbx-abc123")
	if errors.Is(err, sandboxd.ErrNotFound) {
		fmt.Println("gone")
		return
	}
	sb.StartKeepAlive(time.Minute) // renew while we use it
	defer sb.Detach()              // leave it running afterwards
}
