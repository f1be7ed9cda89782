package sandboxd

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// UploadDir copies the local directory localDir into the sandbox as the new
// directory remoteDir ("copy my repo in"): it is packed as a tar.gz on the
// fly (files, directories and symlinks; modes and mtimes kept) and unpacked
// by UploadArchive, so nothing appears unless all of it arrived. opts.Gzip
// is ignored (always gzip); Replace and MakeParents apply.
func (s *Sandbox) UploadDir(ctx context.Context, localDir, remoteDir string, o ArchiveOptions) (*ArchiveResult, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTarGz(pw, localDir)) }()
	o.Gzip = true
	res, err := s.UploadArchive(ctx, remoteDir, pr, o)
	pr.CloseWithError(io.ErrClosedPipe) // stops the writer if the upload ended early
	return res, err
}

func writeTarGz(w io.Writer, root string) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		case info.IsDir(), info.Mode().IsRegular():
		default:
			return nil // devices, FIFOs, sockets: skipped
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.CopyN(tw, f, info.Size()); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
