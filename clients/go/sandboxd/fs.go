package sandboxd

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"iter"
	"time"

	sandboxv1 "sandboxd.dev/gen/go/sandbox/v1"
)

// FileType is what kind of file a path is.
type FileType string

const (
	TypeFile      FileType = "file"
	TypeDirectory FileType = "directory"
	TypeSymlink   FileType = "symlink"
	TypeOther     FileType = "other"
	TypeUnknown   FileType = "unknown"
)

// FileInfo describes one file in a sandbox.
type FileInfo struct {
	Name          string
	Path          string
	Type          FileType
	Size          int64
	Mode          fs.FileMode // permission bits
	UID, GID      uint32
	ModTime       time.Time
	SymlinkTarget string
}

// IsDir reports whether it is a directory.
func (f FileInfo) IsDir() bool { return f.Type == TypeDirectory }

func fileInfoFrom(p *sandboxv1.FileInfo) FileInfo {
	t := TypeUnknown
	switch p.GetType() {
	case sandboxv1.FileType_FILE_TYPE_FILE:
		t = TypeFile
	case sandboxv1.FileType_FILE_TYPE_DIRECTORY:
		t = TypeDirectory
	case sandboxv1.FileType_FILE_TYPE_SYMLINK:
		t = TypeSymlink
	case sandboxv1.FileType_FILE_TYPE_OTHER:
		t = TypeOther
	}
	fi := FileInfo{Name: p.GetName(), Path: p.GetPath(), Type: t, Size: int64(p.GetSize()), Mode: fs.FileMode(p.GetMode()),
		UID: p.GetUid(), GID: p.GetGid(), SymlinkTarget: p.GetSymlinkTarget()}
	if p.Mtime != nil {
		fi.ModTime = p.Mtime.AsTime()
	}
	return fi
}

// Stat describes path (the link itself for a symlink). Retried on UNAVAILABLE.
func (s *Sandbox) Stat(ctx context.Context, path string) (FileInfo, error) {
	return s.stat(ctx, path, false)
}

// StatFollow describes what path points to when it is a symlink.
func (s *Sandbox) StatFollow(ctx context.Context, path string) (FileInfo, error) {
	return s.stat(ctx, path, true)
}

func (s *Sandbox) stat(ctx context.Context, path string, follow bool) (FileInfo, error) {
	var resp *sandboxv1.StatResponse
	err := s.c.unary(ctx, func(ctx context.Context) (err error) {
		resp, err = s.c.rpc.Stat(ctx, &sandboxv1.StatRequest{SandboxId: s.ID, Path: path, FollowSymlinks: follow})
		return err
	})
	if err != nil {
		return FileInfo{}, withOp(err, "Stat")
	}
	return fileInfoFrom(resp.GetInfo()), nil
}

// Exists reports whether path exists.
func (s *Sandbox) Exists(ctx context.Context, path string) (bool, error) {
	_, err := s.Stat(ctx, path)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// ListDir returns a directory's entries; depth > 1 lists recursively down to
// that many levels. Retried on UNAVAILABLE (from the start).
func (s *Sandbox) ListDir(ctx context.Context, path string, depth int) ([]FileInfo, error) {
	var out []FileInfo
	err := s.c.retry(ctx, func(ctx context.Context) error {
		out = out[:0]
		for fi, err := range s.WalkDir(ctx, path, depth) {
			if err != nil {
				return err
			}
			out = append(out, fi)
		}
		return nil
	})
	return out, withOp(err, "ListDir")
}

// WalkDir yields a directory's entries as they arrive (see ListDir); a
// failure is yielded last as (zero FileInfo, error). Not retried.
func (s *Sandbox) WalkDir(ctx context.Context, path string, depth int) iter.Seq2[FileInfo, error] {
	return func(yield func(FileInfo, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		st, err := s.c.rpc.ListDir(ctx, &sandboxv1.ListDirRequest{SandboxId: s.ID, Path: path, Depth: uint32(max(depth, 0))})
		if err != nil {
			yield(FileInfo{}, withOp(wrapErr(err), "ListDir"))
			return
		}
		for {
			m, err := st.Recv()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(FileInfo{}, withOp(wrapErr(err), "ListDir"))
				return
			}
			for _, e := range m.GetEntries() {
				if !yield(fileInfoFrom(e), nil) {
					return
				}
			}
		}
	}
}

// MakeDir creates a directory (ErrAlreadyExists when path exists); with
// parents it is `mkdir -p`. mode 0 means 0755.
func (s *Sandbox) MakeDir(ctx context.Context, path string, parents bool, mode fs.FileMode) error {
	req := &sandboxv1.MakeDirRequest{SandboxId: s.ID, Path: path, Parents: parents}
	if mode != 0 {
		m := uint32(mode.Perm())
		req.Mode = &m
	}
	return withOp(s.c.once(ctx, func(ctx context.Context) error {
		_, err := s.c.rpc.MakeDir(ctx, req)
		return err
	}), "MakeDir")
}

// Remove removes a file, symlink or empty directory; a non-empty directory
// only with recursive (else ErrFailedPrecondition).
func (s *Sandbox) Remove(ctx context.Context, path string, recursive bool) error {
	return withOp(s.c.once(ctx, func(ctx context.Context) error {
		_, err := s.c.rpc.Remove(ctx, &sandboxv1.RemoveRequest{SandboxId: s.ID, Path: path, Recursive: recursive})
		return err
	}), "Remove")
}

// Move renames from to to (ErrAlreadyExists when to exists, unless overwrite).
func (s *Sandbox) Move(ctx context.Context, from, to string, overwrite bool) error {
	return withOp(s.c.once(ctx, func(ctx context.Context) error {
		_, err := s.c.rpc.Move(ctx, &sandboxv1.MoveRequest{SandboxId: s.ID, From: from, To: to, Overwrite: overwrite})
		return err
	}), "Move")
}

// WatchEventType is what happened to a path.
type WatchEventType string

const (
	WatchCreated  WatchEventType = "created"
	WatchModified WatchEventType = "modified"
	WatchRemoved  WatchEventType = "removed"
	WatchRenamed  WatchEventType = "renamed"
	// WatchOverflow: events were lost; re-list the directory.
	WatchOverflow WatchEventType = "overflow"
)

// WatchEvent is one change under a watched directory.
type WatchEvent struct {
	Path    string
	OldPath string // WatchRenamed
	Type    WatchEventType
	IsDir   bool
	Time    time.Time
}

// Watch streams changes under dir to fn until ctx ends or fn returns an
// error. ready (may be nil) is called once the watches are in place. It
// returns nil when ctx was cancelled.
func (s *Sandbox) Watch(ctx context.Context, dir string, recursive bool, ready func(), fn func(WatchEvent) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := s.c.rpc.Watch(ctx, &sandboxv1.WatchRequest{SandboxId: s.ID, Path: dir, Recursive: recursive})
	if err != nil {
		return withOp(wrapErr(err), "Watch")
	}
	for {
		m, err := st.Recv()
		if err != nil {
			if ctx.Err() != nil || err == io.EOF {
				return nil
			}
			return withOp(wrapErr(err), "Watch")
		}
		if m.GetReady() && ready != nil {
			ready()
		}
		for _, e := range m.GetEvents() {
			ev := WatchEvent{Path: e.GetPath(), OldPath: e.GetOldPath(), IsDir: e.GetIsDir()}
			if e.Time != nil {
				ev.Time = e.Time.AsTime()
			}
			switch e.GetType() {
			case sandboxv1.WatchEventType_WATCH_EVENT_TYPE_CREATED:
				ev.Type = WatchCreated
			case sandboxv1.WatchEventType_WATCH_EVENT_TYPE_MODIFIED:
				ev.Type = WatchModified
			case sandboxv1.WatchEventType_WATCH_EVENT_TYPE_REMOVED:
				ev.Type = WatchRemoved
			case sandboxv1.WatchEventType_WATCH_EVENT_TYPE_RENAMED:
				ev.Type = WatchRenamed
			case sandboxv1.WatchEventType_WATCH_EVENT_TYPE_OVERFLOW:
				ev.Type = WatchOverflow
			}
			if err := fn(ev); err != nil {
				return err
			}
		}
	}
}
