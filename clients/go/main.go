// Command sandboxd-client-go exercises the sandboxd gRPC API end to end with
// grpc-go: create a sandbox, stream a few commands (two of them past an
// output cap), leave a background command and come back to it by its tag
// (Attach from offset 0, ListCommands, SignalCommand), upload a file and
// download it back (checking sizes and sha256), upload a small tree as a tar.gz
// and download it back as a tar (UploadArchive, DownloadArchive), and destroy
// the sandbox.
//
//	go run . --addr 127.0.0.1:8080    (or SANDBOXD_ADDR; plaintext h2c)
//
// With token authentication on the server, the API token comes from
// SANDBOXD_TOKEN (or --token, which other users can see in ps) and goes out as
// `authorization: Bearer <token>` on every call. It is never printed.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	sandboxv1 "sandboxd.dev/gen/go/sandbox/v1"
)

const (
	fileSize  = 3*1024*1024 + 12345 // a few MiB, not a multiple of the chunk size
	chunkSize = 256 * 1024
	filePath  = "client-go/blob.bin"
	outputCap = 64 * 1024 // max_output_bytes of the output-limit steps
	treePath  = "client-go/tree"
	greeting  = "hello from go\n"
	tarChunk  = 64 * 1024 // UploadArchive data messages (the server takes up to 4 MiB)
)

func main() {
	def := os.Getenv("SANDBOXD_ADDR")
	if def == "" {
		def = "127.0.0.1:8080"
	}
	addr := flag.String("addr", def, "sandboxd address host:port (plaintext h2c); env SANDBOXD_ADDR")
	// No default shown: -h must not print the token taken from the environment.
	token := flag.String("token", "", "API token sent as 'authorization: Bearer <token>' (default: env SANDBOXD_TOKEN; none: no header)")
	flag.Parse()
	if *token == "" {
		*token = os.Getenv("SANDBOXD_TOKEN")
	}
	if err := run(*addr, strings.TrimSpace(*token)); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL go: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("OK go")
}

// bearerToken sends `authorization: Bearer <token>` with every RPC, unary and
// streaming (grpc.WithPerRPCCredentials). String keeps it out of any %v.
type bearerToken struct{ token string }

var _ credentials.PerRPCCredentials = bearerToken{}

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + t.token}, nil
}

// RequireTransportSecurity is false so the token also goes over this example's
// plaintext h2c, which is fine on loopback; beyond loopback a token must only
// travel over TLS (grpc.WithTransportCredentials(credentials.NewTLS(...)), then
// return true here).
func (bearerToken) RequireTransportSecurity() bool { return false }

func (bearerToken) String() string { return "bearerToken(redacted)" }

func run(addr, token string) error {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken{token}))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	client := sandboxv1.NewSandboxServiceClient(conn)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	requestID := "client-go-" + randHex(8)
	created, err := client.CreateSandbox(ctx, &sandboxv1.CreateSandboxRequest{
		Resources: &sandboxv1.Resources{Cores: 1, MemoryMib: 256, DiskGib: 1},
		Labels:    map[string]string{"client": "go"},
		LeaseTtl:  durationpb.New(10 * time.Minute),
		RequestId: requestID,
	})
	if err != nil {
		return fmt.Errorf("CreateSandbox: %w", err)
	}
	sb := created.GetSandbox()
	id := sb.GetId()
	fmt.Printf("created sandbox %s (state %s, provider %q, tenant %q)\n", id, sb.GetState(), sb.GetProvider(), sb.GetTenant())
	if id == "" {
		return errors.New("CreateSandbox returned an empty sandbox id")
	}
	// Always destroy, also on failure; with a fresh context so a cancelled or
	// expired main context does not leak the sandbox.
	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
		defer dcancel()
		if _, derr := client.DestroySandbox(dctx, &sandboxv1.DestroySandboxRequest{SandboxId: id}); derr != nil {
			fmt.Fprintf(os.Stderr, "DestroySandbox %s: %v\n", id, derr)
		} else {
			fmt.Printf("destroyed sandbox %s\n", id)
		}
	}()
	if sb.GetState() != sandboxv1.Sandbox_STATE_RUNNING {
		return fmt.Errorf("sandbox state %s, want STATE_RUNNING", sb.GetState())
	}

	// 0. Renew the lease to 20 minutes: it runs at least that long, at most 1.5 times.
	before := time.Now()
	ka, err := client.KeepAlive(ctx, &sandboxv1.KeepAliveRequest{SandboxId: id, LeaseTtl: durationpb.New(20 * time.Minute)})
	if err != nil {
		return fmt.Errorf("KeepAlive: %w", err)
	}
	exp := ka.GetLeaseExpiresAt().AsTime()
	if exp.Before(before.Add(20*time.Minute)) || exp.After(time.Now().Add(30*time.Minute)) {
		return fmt.Errorf("KeepAlive: lease expires at %s, want 20 to 30 minutes from now", exp)
	}
	fmt.Printf("lease renewed until %s\n", exp.Format(time.RFC3339))

	// Let it reach one private service (a database on the LAN), then clear the list again.
	eg, err := client.SetEgressAllowlist(ctx, &sandboxv1.SetEgressAllowlistRequest{SandboxId: id, Entries: []string{"10.1.2.3:5432"}})
	if err != nil {
		return fmt.Errorf("SetEgressAllowlist: %w", err)
	}
	if l := eg.GetSandbox().GetEgressAllowlist(); len(l) != 1 || !strings.Contains(l[0], "5432") {
		return fmt.Errorf("SetEgressAllowlist: allowlist %v, want the one entry", l)
	}
	if eg, err = client.SetEgressAllowlist(ctx, &sandboxv1.SetEgressAllowlistRequest{SandboxId: id}); err != nil || len(eg.GetSandbox().GetEgressAllowlist()) != 0 {
		return fmt.Errorf("SetEgressAllowlist (clear): %v %v", err, eg.GetSandbox().GetEgressAllowlist())
	}
	fmt.Println("egress allowlist set and cleared")

	// 1. uname -a, stdout printed as it arrives.
	res, err := execStream(ctx, client, &sandboxv1.ExecRequest{
		SandboxId: id,
		Command:   &sandboxv1.ExecRequest_Argv{Argv: &sandboxv1.Argv{Args: []string{"uname", "-a"}}},
	}, outputRaw)
	if err != nil {
		return fmt.Errorf("exec uname: %w", err)
	}
	if err := expectExit(res.exited, 0); err != nil {
		return fmt.Errorf("uname: %w", err)
	}
	if res.stdout.Len() == 0 {
		return errors.New("uname: no stdout")
	}

	// 2. A shell command writing to both streams and exiting 3.
	res, err = execStream(ctx, client, &sandboxv1.ExecRequest{
		SandboxId: id,
		Command:   &sandboxv1.ExecRequest_Shell{Shell: "echo out; echo err >&2; exit 3"},
	}, outputTagged)
	if err != nil {
		return fmt.Errorf("exec shell: %w", err)
	}
	if err := expectExit(res.exited, 3); err != nil {
		return fmt.Errorf("shell: %w", err)
	}
	if res.stdout.String() != "out\n" || res.stderr.String() != "err\n" {
		return fmt.Errorf("shell: stdout %q stderr %q, want \"out\\n\" and \"err\\n\"", res.stdout.String(), res.stderr.String())
	}

	// 3. Output past max_output_bytes: by default (KILL) the command is killed
	// once it goes past the cap, and exactly the cap's worth of stdout arrives.
	res, err = execStream(ctx, client, &sandboxv1.ExecRequest{
		SandboxId:      id,
		Command:        &sandboxv1.ExecRequest_Argv{Argv: &sandboxv1.Argv{Args: []string{"yes", "sandboxd"}}},
		MaxOutputBytes: outputCap,
		Timeout:        durationpb.New(time.Minute), // fail fast should the cap not stop it
	}, outputQuiet)
	if err != nil {
		return fmt.Errorf("exec yes: %w", err)
	}
	fmt.Printf("[output limit: %d bytes, reason=%s]\n", res.stdout.Len(), res.exited.GetReason())
	if e := res.exited; e.GetReason() != sandboxv1.ExecExited_REASON_OUTPUT_LIMIT || !e.GetStdoutTruncated() || res.stdout.Len() != outputCap {
		return fmt.Errorf("yes: exited reason %s signal %q stdout_truncated %v with %d stdout bytes, want REASON_OUTPUT_LIMIT, truncated, %d bytes",
			e.GetReason(), e.GetSignal(), e.GetStdoutTruncated(), res.stdout.Len(), outputCap)
	}
	// With DISCARD the rest is dropped and the command runs to its end.
	res, err = execStream(ctx, client, &sandboxv1.ExecRequest{
		SandboxId:         id,
		Command:           &sandboxv1.ExecRequest_Shell{Shell: "head -c 100000 /dev/zero; echo done >&2"},
		MaxOutputBytes:    outputCap,
		OutputLimitAction: sandboxv1.OutputLimitAction_OUTPUT_LIMIT_ACTION_DISCARD,
	}, outputQuiet)
	if err != nil {
		return fmt.Errorf("exec discard: %w", err)
	}
	fmt.Printf("[output limit discard: %d bytes, stdout_truncated=%v, stderr %q]\n", res.stdout.Len(), res.exited.GetStdoutTruncated(), res.stderr.String())
	if err := expectExit(res.exited, 0); err != nil {
		return fmt.Errorf("discard: %w", err)
	}
	if !res.exited.GetStdoutTruncated() || res.stdout.Len() != outputCap || res.stderr.String() != "done\n" {
		return fmt.Errorf("discard: stdout_truncated %v with %d stdout bytes, stderr %q; want truncated, %d bytes, \"done\\n\"",
			res.exited.GetStdoutTruncated(), res.stdout.Len(), res.stderr.String(), outputCap)
	}

	// 4. Kept commands: a background command left after its first line and
	// re-attached by tag; another one stopped with SIGTERM.
	if err := keptCommands(ctx, client, id); err != nil {
		return err
	}

	// 5. Upload a few MiB of random bytes in chunks, with expected size and sha256.
	data := make([]byte, fileSize)
	if _, err := rand.Read(data); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	up, err := client.Upload(ctx)
	if err != nil {
		return fmt.Errorf("Upload: %w", err)
	}
	size := uint64(len(data))
	if err := up.Send(&sandboxv1.UploadRequest{Part: &sandboxv1.UploadRequest_Header{Header: &sandboxv1.UploadHeader{
		SandboxId: id, Path: filePath, Mode: 0o644, MakeParents: true,
		ExpectedSize: &size, ExpectedSha256: want,
	}}}); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("Upload header: %w", err)
	}
	for off := 0; off < len(data); off += chunkSize {
		end := min(off+chunkSize, len(data))
		if err := up.Send(&sandboxv1.UploadRequest{Part: &sandboxv1.UploadRequest_Data{Data: data[off:end]}}); err != nil {
			if errors.Is(err, io.EOF) {
				break // the server ended the stream; CloseAndRecv returns its status
			}
			return fmt.Errorf("Upload data: %w", err)
		}
	}
	ur, err := up.CloseAndRecv()
	if err != nil {
		return fmt.Errorf("Upload: %w", err)
	}
	fmt.Printf("uploaded %d bytes to %s, sha256 %s\n", ur.GetBytesWritten(), filePath, ur.GetSha256())
	if ur.GetBytesWritten() != size || ur.GetSha256() != want {
		return fmt.Errorf("upload: server says %d bytes sha256 %s, want %d %s", ur.GetBytesWritten(), ur.GetSha256(), size, want)
	}

	// 6. Download it back and verify the done message and a local hash.
	dl, err := client.Download(ctx, &sandboxv1.DownloadRequest{SandboxId: id, Path: filePath})
	if err != nil {
		return fmt.Errorf("Download: %w", err)
	}
	h := sha256.New()
	var got uint64
	var info *sandboxv1.DownloadInfo
	var done *sandboxv1.DownloadDone
	for {
		msg, err := dl.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("Download: %w", err)
		}
		switch p := msg.GetPart().(type) {
		case *sandboxv1.DownloadResponse_Info:
			info = p.Info
		case *sandboxv1.DownloadResponse_Data:
			h.Write(p.Data)
			got += uint64(len(p.Data))
		case *sandboxv1.DownloadResponse_Done:
			done = p.Done
		}
	}
	local := hex.EncodeToString(h.Sum(nil))
	if info == nil || done == nil {
		return fmt.Errorf("download: missing info (%v) or done (%v) message", info != nil, done != nil)
	}
	fmt.Printf("downloaded %d bytes (info size %d mode %o), done sha256 %s, local sha256 %s\n",
		got, info.GetSize(), info.GetMode(), done.GetSha256(), local)
	if info.GetSize() != size || got != size || done.GetBytes() != size {
		return fmt.Errorf("download: sizes info %d received %d done %d, want %d", info.GetSize(), got, done.GetBytes(), size)
	}
	if done.GetSha256() != want || local != want {
		return fmt.Errorf("download: sha256 done %s local %s, want %s", done.GetSha256(), local, want)
	}

	// 7. A small tree as a tar.gz: unpacked, looked at, downloaded back as a tar, refused a second time.
	return archives(ctx, client, id)
}

// archives uploads a tar.gz made with archive/tar and compress/gzip (src/,
// src/main.txt, the executable src/run.sh and the symlink src/link) to
// treePath, checks the tree with a command, downloads it back as a plain tar
// (checking bytes, sha256 and the entries) and sees a second upload without
// replace refused with ALREADY_EXISTS.
func archives(ctx context.Context, c sandboxv1.SandboxServiceClient, id string) error {
	tgz, sent, err := treeArchive()
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	header := &sandboxv1.UploadArchiveHeader{SandboxId: id, Path: treePath, Format: sandboxv1.ArchiveFormat_ARCHIVE_FORMAT_TAR_GZIP, MakeParents: true}
	ur, err := uploadArchive(ctx, c, header, tgz)
	if err != nil {
		return fmt.Errorf("UploadArchive: %w", err)
	}
	if ur.GetEntries() != uint64(sent) || ur.GetArchiveBytes() != uint64(len(tgz)) {
		return fmt.Errorf("UploadArchive: %d entries, %d archive bytes; want %d and %d", ur.GetEntries(), ur.GetArchiveBytes(), sent, len(tgz))
	}

	res, err := execStream(ctx, c, &sandboxv1.ExecRequest{SandboxId: id, Command: &sandboxv1.ExecRequest_Shell{Shell: fmt.Sprintf(
		"cat %[1]s/src/main.txt && stat -c %%a %[1]s/src/run.sh && readlink %[1]s/src/link", treePath)}}, outputQuiet)
	if err != nil {
		return fmt.Errorf("exec archive check: %w", err)
	}
	if err := expectExit(res.exited, 0); err != nil {
		return fmt.Errorf("archive check: %w", err)
	}
	if want := greeting + "755\nmain.txt\n"; res.stdout.String() != want {
		return fmt.Errorf("archive check: stdout %q, want %q", res.stdout.String(), want)
	}

	tarball, done, err := downloadArchive(ctx, c, &sandboxv1.DownloadArchiveRequest{SandboxId: id, Path: treePath, Format: sandboxv1.ArchiveFormat_ARCHIVE_FORMAT_TAR})
	if err != nil {
		return fmt.Errorf("DownloadArchive: %w", err)
	}
	sum := sha256.Sum256(tarball)
	if local := hex.EncodeToString(sum[:]); done.GetBytes() != uint64(len(tarball)) || done.GetSha256() != local {
		return fmt.Errorf("DownloadArchive: done says %d bytes sha256 %s; received %d bytes sha256 %s", done.GetBytes(), done.GetSha256(), len(tarball), local)
	}
	var got int
	var content []byte
	var link *tar.Header
	tr := tar.NewReader(bytes.NewReader(tarball))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("DownloadArchive: reading the tar: %w", err)
		}
		got++
		switch hdr.Name {
		case "./src/main.txt":
			if content, err = io.ReadAll(tr); err != nil {
				return fmt.Errorf("DownloadArchive: reading ./src/main.txt: %w", err)
			}
		case "./src/link":
			link = hdr
		}
	}
	if string(content) != greeting || link == nil || link.Typeflag != tar.TypeSymlink || link.Linkname != "main.txt" || done.GetEntries() != uint64(got) {
		return fmt.Errorf("DownloadArchive: ./src/main.txt %q, ./src/link %v, %d entries (done says %d); want %q, a symlink to main.txt",
			content, link, got, done.GetEntries(), greeting)
	}

	if _, err := uploadArchive(ctx, c, header, tgz); status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("UploadArchive again without replace: %v, want AlreadyExists", err)
	}
	fmt.Printf("[archive: %d entries up (%d bytes tar.gz), %d down (%d bytes tar), sha256 ok, ALREADY_EXISTS on re-upload]\n", ur.GetEntries(), len(tgz), got, len(tarball))
	return nil
}

// treeArchive makes the archive step's tar.gz in memory and returns it with
// the number of entries in it (no "./" root entry).
func treeArchive() ([]byte, int, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	now := time.Now()
	entries := []struct {
		hdr  tar.Header
		body string
	}{
		{tar.Header{Typeflag: tar.TypeDir, Name: "src/", Mode: 0o755}, ""},
		{tar.Header{Typeflag: tar.TypeReg, Name: "src/main.txt", Mode: 0o644}, greeting},
		{tar.Header{Typeflag: tar.TypeReg, Name: "src/run.sh", Mode: 0o755}, "#!/bin/sh\necho ok\n"},
		{tar.Header{Typeflag: tar.TypeSymlink, Name: "src/link", Linkname: "main.txt", Mode: 0o777}, ""},
	}
	for _, e := range entries {
		e.hdr.Size, e.hdr.ModTime = int64(len(e.body)), now
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, 0, err
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			return nil, 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, 0, err
	}
	if err := gz.Close(); err != nil {
		return nil, 0, err
	}
	return buf.Bytes(), len(entries), nil
}

// uploadArchive sends the header, then the archive in chunks of at most tarChunk bytes.
func uploadArchive(ctx context.Context, c sandboxv1.SandboxServiceClient, h *sandboxv1.UploadArchiveHeader, data []byte) (*sandboxv1.UploadArchiveResponse, error) {
	up, err := c.UploadArchive(ctx)
	if err != nil {
		return nil, err
	}
	if err := up.Send(&sandboxv1.UploadArchiveRequest{Part: &sandboxv1.UploadArchiveRequest_Header{Header: h}}); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	for off := 0; off < len(data); off += tarChunk {
		end := min(off+tarChunk, len(data))
		if err := up.Send(&sandboxv1.UploadArchiveRequest{Part: &sandboxv1.UploadArchiveRequest_Data{Data: data[off:end]}}); err != nil {
			if errors.Is(err, io.EOF) {
				break // the server ended the stream; CloseAndRecv returns its status
			}
			return nil, err
		}
	}
	return up.CloseAndRecv()
}

// downloadArchive collects an archive's bytes and its done message.
func downloadArchive(ctx context.Context, c sandboxv1.SandboxServiceClient, req *sandboxv1.DownloadArchiveRequest) ([]byte, *sandboxv1.DownloadArchiveDone, error) {
	stream, err := c.DownloadArchive(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	var buf bytes.Buffer
	var done *sandboxv1.DownloadArchiveDone
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		switch p := msg.GetPart().(type) {
		case *sandboxv1.DownloadArchiveResponse_Data:
			buf.Write(p.Data)
		case *sandboxv1.DownloadArchiveResponse_Done:
			done = p.Done
		}
	}
	if done == nil {
		return nil, nil, errors.New("stream ended without a done message")
	}
	return buf.Bytes(), done, nil
}

// keptCommands starts a background command with a tag, detaches after its
// first line (cancelling the Exec stream does not stop a background command),
// sees it running in ListCommands, re-attaches by tag from offset 0 and gets
// every line and the exit; then ends a second background command, `sleep 60`,
// with SignalCommand SIGTERM.
func keptCommands(ctx context.Context, c sandboxv1.SandboxServiceClient, id string) error {
	const tag = "counter"
	ectx, detach := context.WithCancel(ctx)
	defer detach()
	stream, err := c.Exec(ectx, &sandboxv1.ExecRequest{
		SandboxId:  id,
		Command:    &sandboxv1.ExecRequest_Shell{Shell: "for i in 1 2 3; do echo $i; sleep 1; done"},
		Background: true,
		Tag:        tag,
	})
	if err != nil {
		return fmt.Errorf("exec background: %w", err)
	}
	var started *sandboxv1.ExecStarted
	var first []byte
	for first == nil {
		msg, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("exec background (before its first line): %w", err)
		}
		switch ev := msg.GetEvent().(type) {
		case *sandboxv1.ExecResponse_Started:
			started = ev.Started
		case *sandboxv1.ExecResponse_Stdout:
			if msg.GetOffset() != 0 {
				return fmt.Errorf("exec background: first stdout chunk at offset %d, want 0", msg.GetOffset())
			}
			first = ev.Stdout
		case *sandboxv1.ExecResponse_Stderr:
			return fmt.Errorf("exec background: unexpected stderr %q", ev.Stderr)
		case *sandboxv1.ExecResponse_Exited:
			return fmt.Errorf("exec background: exited before its first line (%v)", ev.Exited)
		}
	}
	detach() // leave it running
	if started == nil || started.GetExecId() == "" || !bytes.HasPrefix(first, []byte("1\n")) {
		return fmt.Errorf("exec background: started %v, first stdout %q; want an exec id and \"1\\n\"", started, first)
	}
	fmt.Printf("[background tag=%s exec_id=%s pid=%d: first line %q, detached]\n", tag, started.GetExecId(), started.GetPid(), first)

	list, err := c.ListCommands(ctx, &sandboxv1.ListCommandsRequest{SandboxId: id})
	if err != nil {
		return fmt.Errorf("ListCommands: %w", err)
	}
	var info *sandboxv1.CommandInfo
	for _, ci := range list.GetCommands() {
		if ci.GetTag() == tag {
			info = ci
		}
	}
	if info == nil || info.GetExecId() != started.GetExecId() || !info.GetRunning() {
		return fmt.Errorf("ListCommands: %v, want %s running with tag %s", list.GetCommands(), started.GetExecId(), tag)
	}
	fmt.Printf("[list: tag=%s running=%v, %d stdout bytes so far]\n", info.GetTag(), info.GetRunning(), info.GetStdoutEnd())

	byTag := &sandboxv1.CommandRef{SandboxId: id, Command: &sandboxv1.CommandRef_Tag{Tag: tag}}
	out, exited, err := attach(ctx, c, byTag)
	if err != nil {
		return fmt.Errorf("Attach %s: %w", tag, err)
	}
	fmt.Printf("[attach tag=%s from offset 0: %q, exit_code=%d]\n", tag, out, exited.GetExitCode())
	if string(out) != "1\n2\n3\n" {
		return fmt.Errorf("Attach %s: stdout %q, want \"1\\n2\\n3\\n\"", tag, out)
	}
	if err := expectExit(exited, 0); err != nil {
		return fmt.Errorf("Attach %s: %w", tag, err)
	}

	// A second one, ended by a signal to its process group.
	const sleeper = "sleeper"
	sctx, detachSleeper := context.WithCancel(ctx)
	defer detachSleeper()
	ss, err := c.Exec(sctx, &sandboxv1.ExecRequest{
		SandboxId:  id,
		Command:    &sandboxv1.ExecRequest_Argv{Argv: &sandboxv1.Argv{Args: []string{"sleep", "60"}}},
		Background: true,
		Tag:        sleeper,
	})
	if err != nil {
		return fmt.Errorf("exec sleep: %w", err)
	}
	msg, err := ss.Recv()
	if err != nil {
		return fmt.Errorf("exec sleep: %w", err)
	}
	if msg.GetStarted() == nil {
		return fmt.Errorf("exec sleep: first event %v, want started", msg)
	}
	detachSleeper()
	bySleeper := &sandboxv1.CommandRef{SandboxId: id, Command: &sandboxv1.CommandRef_Tag{Tag: sleeper}}
	if _, err := c.SignalCommand(ctx, &sandboxv1.SignalCommandRequest{Command: bySleeper, Signal: "SIGTERM"}); err != nil {
		return fmt.Errorf("SignalCommand: %w", err)
	}
	_, exited, err = attach(ctx, c, bySleeper)
	if err != nil {
		return fmt.Errorf("Attach %s: %w", sleeper, err)
	}
	fmt.Printf("[signal SIGTERM to tag=%s: exited signal=%q after %s]\n", sleeper, exited.GetSignal(), exited.GetDuration().AsDuration())
	if exited.GetSignal() != "SIGTERM" || exited.ExitCode != nil {
		return fmt.Errorf("%s: exited %v, want ended by SIGTERM", sleeper, exited)
	}
	return nil
}

// attach reads a kept command's stdout from offset 0 until its exit, checking
// that every chunk's offset continues the previous one.
func attach(ctx context.Context, c sandboxv1.SandboxServiceClient, ref *sandboxv1.CommandRef) ([]byte, *sandboxv1.ExecExited, error) {
	stream, err := c.Attach(ctx, &sandboxv1.AttachRequest{Command: ref})
	if err != nil {
		return nil, nil, err
	}
	var out []byte
	var exited *sandboxv1.ExecExited
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		switch ev := msg.GetEvent().(type) {
		case *sandboxv1.AttachResponse_Stdout:
			if msg.GetOffset() != uint64(len(out)) {
				return nil, nil, fmt.Errorf("stdout chunk at offset %d, want %d", msg.GetOffset(), len(out))
			}
			out = append(out, ev.Stdout...)
		case *sandboxv1.AttachResponse_Exited:
			exited = ev.Exited
		}
	}
	if exited == nil {
		return nil, nil, errors.New("stream ended without an exited event")
	}
	return out, exited, nil
}

type execResult struct {
	stdout, stderr bytes.Buffer
	exited         *sandboxv1.ExecExited
}

// outputMode says how execStream prints the command's output.
type outputMode int

const (
	outputRaw    outputMode = iota // stdout and stderr copied as they arrive
	outputTagged                   // each chunk quoted and prefixed with its stream name
	outputQuiet                    // nothing printed (only collected)
)

// execStream runs a command, collecting its output and printing it as it
// arrives according to mode.
func execStream(ctx context.Context, c sandboxv1.SandboxServiceClient, req *sandboxv1.ExecRequest, mode outputMode) (*execResult, error) {
	stream, err := c.Exec(ctx, req)
	if err != nil {
		return nil, err
	}
	res := &execResult{}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch ev := msg.GetEvent().(type) {
		case *sandboxv1.ExecResponse_Started:
			fmt.Printf("[started exec_id=%s pid=%d]\n", ev.Started.GetExecId(), ev.Started.GetPid())
		case *sandboxv1.ExecResponse_Stdout:
			res.stdout.Write(ev.Stdout)
			switch mode {
			case outputTagged:
				fmt.Printf("[stdout] %q\n", ev.Stdout)
			case outputRaw:
				os.Stdout.Write(ev.Stdout)
			}
		case *sandboxv1.ExecResponse_Stderr:
			res.stderr.Write(ev.Stderr)
			switch mode {
			case outputTagged:
				fmt.Printf("[stderr] %q\n", ev.Stderr)
			case outputRaw:
				os.Stderr.Write(ev.Stderr)
			}
		case *sandboxv1.ExecResponse_Exited:
			res.exited = ev.Exited
		}
	}
	if res.exited == nil {
		return nil, errors.New("stream ended without an exited event")
	}
	e := res.exited
	code := "none"
	if e.ExitCode != nil {
		code = fmt.Sprint(e.GetExitCode())
	}
	fmt.Printf("[exited reason=%s exit_code=%s signal=%q duration=%s]\n", e.GetReason(), code, e.GetSignal(), e.GetDuration().AsDuration())
	return res, nil
}

func expectExit(e *sandboxv1.ExecExited, code int32) error {
	if e.GetReason() != sandboxv1.ExecExited_REASON_EXITED || e.ExitCode == nil || e.GetExitCode() != code {
		return fmt.Errorf("exited reason %s exit_code %v signal %q, want REASON_EXITED with code %d", e.GetReason(), e.ExitCode, e.GetSignal(), code)
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
