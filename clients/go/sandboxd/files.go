package sandboxd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	sandboxv1 "sandboxd.dev/gen/go/sandbox/v1"
)

// chunkSize is the size of Upload's data messages (the server takes up to 4 MiB).
const chunkSize = 1 << 20

// UploadOptions tune Upload.
type UploadOptions struct {
	// Mode is the file's permission bits (0: 0644).
	Mode fs.FileMode
	// MakeParents creates missing parent directories.
	MakeParents bool
	// Size, when > 0, is sent as the expected size: the server refuses the
	// upload unless exactly this many bytes arrive. Upload finds it itself
	// for *os.File, *bytes.Reader, *bytes.Buffer and *strings.Reader.
	Size int64
	// SHA256 (hex), when known beforehand, is sent as the expected checksum.
	// Either way Upload checks the server's checksum against its own.
	SHA256 string
	// Progress is called after each chunk with the bytes sent so far and the
	// total (-1 when unknown).
	Progress func(done, total int64)
}

// UploadResult is what the server wrote.
type UploadResult struct {
	Bytes  int64
	SHA256 string
}

// ErrChecksum is returned when a transfer's sha256 does not match.
var ErrChecksum = errors.New("sandboxd: checksum mismatch")

func sizeOf(r io.Reader) int64 {
	switch v := r.(type) {
	case *os.File:
		if st, err := v.Stat(); err == nil && st.Mode().IsRegular() {
			if off, err := v.Seek(0, io.SeekCurrent); err == nil {
				return st.Size() - off
			}
		}
	case interface{ Len() int }:
		return int64(v.Len())
	}
	return -1
}

// Upload writes r to path in the sandbox, streaming it in 1 MiB chunks while
// hashing it, and checks the server's sha256 against its own. The file
// appears only once complete; a failed upload leaves nothing. Not retried.
func (s *Sandbox) Upload(ctx context.Context, path string, r io.Reader, o UploadOptions) (*UploadResult, error) {
	total := o.Size
	if total <= 0 {
		total = sizeOf(r)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var st grpc.ClientStreamingClient[sandboxv1.UploadRequest, sandboxv1.UploadResponse]
	if err := s.c.open(ctx, func() (err error) { st, err = s.c.rpc.Upload(ctx); return err }); err != nil {
		return nil, withOp(err, "Upload")
	}
	h := &sandboxv1.UploadHeader{SandboxId: s.ID, Path: path, Mode: uint32(o.Mode.Perm()), MakeParents: o.MakeParents, ExpectedSha256: o.SHA256}
	if total >= 0 {
		n := uint64(total)
		h.ExpectedSize = &n
	}
	if err := st.Send(&sandboxv1.UploadRequest{Part: &sandboxv1.UploadRequest_Header{Header: h}}); err != nil {
		_, err = st.CloseAndRecv() // the real error
		return nil, withOp(wrapErr(err), "Upload")
	}
	sum := sha256.New()
	var sent int64
	buf := make([]byte, chunkSize)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			sum.Write(buf[:n])
			if err := st.Send(&sandboxv1.UploadRequest{Part: &sandboxv1.UploadRequest_Data{Data: buf[:n]}}); err != nil {
				_, err = st.CloseAndRecv()
				return nil, withOp(wrapErr(err), "Upload")
			}
			sent += int64(n)
			if o.Progress != nil {
				o.Progress(sent, total)
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return nil, fmt.Errorf("sandboxd: Upload: reading the source: %w", rerr)
		}
	}
	resp, err := st.CloseAndRecv()
	if err != nil {
		return nil, withOp(wrapErr(err), "Upload")
	}
	local := hex.EncodeToString(sum.Sum(nil))
	if resp.GetSha256() != local || int64(resp.GetBytesWritten()) != sent {
		return nil, fmt.Errorf("%w: Upload %s: sent %d bytes sha256 %s, server wrote %d bytes sha256 %s",
			ErrChecksum, path, sent, local, resp.GetBytesWritten(), resp.GetSha256())
	}
	return &UploadResult{Bytes: sent, SHA256: local}, nil
}

// UploadFile uploads a local file, keeping its permission bits.
func (s *Sandbox) UploadFile(ctx context.Context, local, remote string, o UploadOptions) (*UploadResult, error) {
	f, err := os.Open(local)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if o.Mode == 0 {
		if st, err := f.Stat(); err == nil {
			o.Mode = st.Mode().Perm()
		}
	}
	return s.Upload(ctx, remote, f, o)
}

// DownloadOptions tune Download.
type DownloadOptions struct {
	// Offset starts the download at this byte of the file.
	Offset int64
	// Progress is called after each chunk with the bytes written so far and
	// the total to write.
	Progress func(done, total int64)
	// MaxResumes bounds how often a cut-off stream is resumed (default 10
	// in a row without progress).
	MaxResumes int
}

// DownloadResult describes a finished download.
type DownloadResult struct {
	Size    int64       // the whole file's size
	Mode    fs.FileMode // its permission bits
	Bytes   int64       // bytes written to w
	SHA256  string      // hex sha256 of the bytes written to w
	Resumes int         // how often a cut-off stream was resumed
}

// Download writes the file at path to w. Each stream's done.sha256 is
// checked against a hash of the bytes received. When the stream is cut off
// (UNAVAILABLE, a reset stream, a server restart), Download resumes from the
// byte it reached with a new call, with backoff, bounded by ctx.
func (s *Sandbox) Download(ctx context.Context, path string, w io.Writer, o DownloadOptions) (*DownloadResult, error) {
	maxResumes := o.MaxResumes
	if maxResumes <= 0 {
		maxResumes = 10
	}
	res := &DownloadResult{Size: -1}
	whole := sha256.New()
	offset := o.Offset
	failures := 0
	wait := s.c.opts.retry.Initial
	for {
		progressed, done, err := s.downloadOnce(ctx, path, w, offset, whole, res, o.Progress)
		offset += progressed
		res.Bytes += progressed
		if done {
			res.SHA256 = hex.EncodeToString(whole.Sum(nil))
			return res, nil
		}
		if !resumable(err) || ctx.Err() != nil {
			return nil, withOp(err, "Download")
		}
		if progressed > 0 {
			failures, wait = 0, s.c.opts.retry.Initial
		}
		if failures++; failures > maxResumes {
			return nil, withOp(err, "Download")
		}
		if serr := sleepCtx(ctx, jitter(wait)); serr != nil {
			return nil, withOp(err, "Download")
		}
		wait = min(wait*2, s.c.opts.retry.Max)
		res.Resumes++
	}
}

func errCutOff() error {
	return &Error{Code: codes.Unavailable, Message: "stream ended before its done message"}
}

func resumable(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code == codes.Unavailable || e.Code == codes.Internal || e.Code == codes.Unknown && strings.Contains(e.Message, "stream")
}

// downloadOnce runs one Download stream from offset; it returns the bytes it
// wrote and whether the download completed.
func (s *Sandbox) downloadOnce(ctx context.Context, path string, w io.Writer, offset int64, whole hash.Hash, res *DownloadResult, progress func(done, total int64)) (int64, bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := s.c.rpc.Download(ctx, &sandboxv1.DownloadRequest{SandboxId: s.ID, Path: path, Offset: uint64(offset)})
	if err != nil {
		return 0, false, wrapErr(err)
	}
	part := sha256.New()
	var n int64
	for {
		m, err := st.Recv()
		if err == io.EOF {
			return n, false, errCutOff()
		}
		if err != nil {
			return n, false, wrapErr(err)
		}
		switch {
		case m.GetInfo() != nil:
			info := m.GetInfo()
			size := int64(info.GetSize())
			if res.Size >= 0 && res.Size != size {
				return n, false, fmt.Errorf("sandboxd: Download %s: file changed size while resuming (%d, now %d)", path, res.Size, size)
			}
			res.Size, res.Mode = size, fs.FileMode(info.GetMode()).Perm()
		case m.GetDone() != nil:
			d := m.GetDone()
			if got := hex.EncodeToString(part.Sum(nil)); d.GetSha256() != got || int64(d.GetBytes()) != n {
				return n, false, fmt.Errorf("%w: Download %s from %d: got %d bytes sha256 %s, server sent %d bytes sha256 %s",
					ErrChecksum, path, offset, n, got, d.GetBytes(), d.GetSha256())
			}
			return n, true, nil
		default:
			data := m.GetData()
			if _, err := w.Write(data); err != nil {
				return n, false, fmt.Errorf("sandboxd: Download: writing: %w", err)
			}
			part.Write(data)
			whole.Write(data)
			n += int64(len(data))
			if progress != nil {
				progress(res.Bytes+n, res.Size-(offset-res.Bytes))
			}
		}
	}
}

// DownloadFile downloads remote into the local file (created or truncated,
// with the remote file's permission bits).
func (s *Sandbox) DownloadFile(ctx context.Context, remote, local string, o DownloadOptions) (*DownloadResult, error) {
	f, err := os.OpenFile(local, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	res, err := s.Download(ctx, remote, f, o)
	if cerr := f.Close(); err == nil && cerr != nil {
		return nil, cerr
	}
	if err == nil && res.Mode != 0 {
		_ = os.Chmod(local, res.Mode)
	}
	return res, err
}

// ReadFile returns a (small) file's contents.
func (s *Sandbox) ReadFile(ctx context.Context, path string) ([]byte, error) {
	var b bytes.Buffer
	if _, err := s.Download(ctx, path, &b, DownloadOptions{}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteFile writes data to path (mode 0: 0644), creating parent directories.
func (s *Sandbox) WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error {
	_, err := s.Upload(ctx, path, bytes.NewReader(data), UploadOptions{Mode: mode, MakeParents: true})
	return err
}

// ArchiveOptions tune UploadArchive and DownloadArchive.
type ArchiveOptions struct {
	// Gzip: the archive is a .tar.gz (else a plain tar).
	Gzip bool
	// Replace an existing target directory (UploadArchive).
	Replace bool
	// MakeParents creates the target's missing parents (UploadArchive).
	MakeParents bool
}

// ArchiveResult describes an archive transfer.
type ArchiveResult struct {
	Entries      int64
	ArchiveBytes int64
	FileBytes    int64 // UploadArchive: sum of regular files' sizes
	SHA256       string
	// ChangedWhileReading: DownloadArchive saw a file change while tar read it.
	ChangedWhileReading bool
}

func archiveFormat(gz bool) sandboxv1.ArchiveFormat {
	if gz {
		return sandboxv1.ArchiveFormat_ARCHIVE_FORMAT_TAR_GZIP
	}
	return sandboxv1.ArchiveFormat_ARCHIVE_FORMAT_TAR
}

// UploadArchive unpacks a tar (or tar.gz) stream into the new directory
// dir; nothing appears unless the whole archive unpacked. Not retried.
func (s *Sandbox) UploadArchive(ctx context.Context, dir string, r io.Reader, o ArchiveOptions) (*ArchiveResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var st grpc.ClientStreamingClient[sandboxv1.UploadArchiveRequest, sandboxv1.UploadArchiveResponse]
	if err := s.c.open(ctx, func() (err error) { st, err = s.c.rpc.UploadArchive(ctx); return err }); err != nil {
		return nil, withOp(err, "UploadArchive")
	}
	h := &sandboxv1.UploadArchiveHeader{SandboxId: s.ID, Path: dir, Format: archiveFormat(o.Gzip), Replace: o.Replace, MakeParents: o.MakeParents}
	send := func(m *sandboxv1.UploadArchiveRequest) error {
		if err := st.Send(m); err != nil {
			_, err = st.CloseAndRecv()
			return withOp(wrapErr(err), "UploadArchive")
		}
		return nil
	}
	if err := send(&sandboxv1.UploadArchiveRequest{Part: &sandboxv1.UploadArchiveRequest_Header{Header: h}}); err != nil {
		return nil, err
	}
	sum := sha256.New()
	buf := make([]byte, chunkSize)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			sum.Write(buf[:n])
			if err := send(&sandboxv1.UploadArchiveRequest{Part: &sandboxv1.UploadArchiveRequest_Data{Data: buf[:n]}}); err != nil {
				return nil, err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return nil, fmt.Errorf("sandboxd: UploadArchive: reading the source: %w", rerr)
		}
	}
	resp, err := st.CloseAndRecv()
	if err != nil {
		return nil, withOp(wrapErr(err), "UploadArchive")
	}
	return &ArchiveResult{Entries: int64(resp.GetEntries()), ArchiveBytes: int64(resp.GetArchiveBytes()), FileBytes: int64(resp.GetFileBytes()),
		SHA256: hex.EncodeToString(sum.Sum(nil))}, nil
}

// DownloadArchive writes the directory dir as a tar (or tar.gz) stream to
// w, checking the server's sha256 against the bytes written. Not resumed:
// the archive is made afresh by each call.
func (s *Sandbox) DownloadArchive(ctx context.Context, dir string, w io.Writer, o ArchiveOptions) (*ArchiveResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := s.c.rpc.DownloadArchive(ctx, &sandboxv1.DownloadArchiveRequest{SandboxId: s.ID, Path: dir, Format: archiveFormat(o.Gzip)})
	if err != nil {
		return nil, withOp(wrapErr(err), "DownloadArchive")
	}
	sum := sha256.New()
	var n int64
	for {
		m, err := st.Recv()
		if err == io.EOF {
			return nil, withOp(errCutOff(), "DownloadArchive")
		}
		if err != nil {
			return nil, withOp(wrapErr(err), "DownloadArchive")
		}
		if d := m.GetDone(); d != nil {
			got := hex.EncodeToString(sum.Sum(nil))
			if d.GetSha256() != got || int64(d.GetBytes()) != n {
				return nil, fmt.Errorf("%w: DownloadArchive %s", ErrChecksum, dir)
			}
			return &ArchiveResult{Entries: int64(d.GetEntries()), ArchiveBytes: n, SHA256: got, ChangedWhileReading: d.GetChangedWhileReading()}, nil
		}
		data := m.GetData()
		if _, err := w.Write(data); err != nil {
			return nil, fmt.Errorf("sandboxd: DownloadArchive: writing: %w", err)
		}
		sum.Write(data)
		n += int64(len(data))
	}
}
