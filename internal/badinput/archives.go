package badinput

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Pack writes entries as an archive of format ".zip", ".tar" or ".tar.gz".
// Entries of zeros are compressed as they are generated (zip, tar.gz), so
// a 200 MiB entry costs a few hundred kilobytes of memory; a plain tar
// would hold them whole, so Pack refuses them there.
func Pack(format string, entries []Entry) ([]byte, error) {
	switch format {
	case ".zip":
		return packZip(entries)
	case ".tar":
		for _, e := range entries {
			if e.Zeros > 1<<20 {
				return nil, fmt.Errorf("badinput: %s: %d bytes of zeros in a plain tar", e.Path, e.Zeros)
			}
		}
		var b bytes.Buffer
		if err := writeTar(&b, entries); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	case ".tar.gz":
		var r recorder
		if err := writeTar(&r, entries); err != nil {
			return nil, err
		}
		return gzipPieces(r.pieces), nil
	}
	return nil, fmt.Errorf("badinput: unknown archive format %q", format)
}

// writeTar writes entries as a GNU tar (GNU's long names take any bytes,
// unlike PAX records, which must be UTF-8).
func writeTar(w io.Writer, entries []Entry) error {
	tw := tar.NewWriter(w)
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, e := range entries {
		h := &tar.Header{Name: e.Path, Mode: 0o644, ModTime: mtime, Format: tar.FormatGNU}
		switch e.Type {
		case Regular:
			h.Typeflag, h.Size = tar.TypeReg, e.Size()
		case Dir:
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		case Symlink:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
		case HardLink:
			h.Typeflag, h.Linkname = tar.TypeLink, e.Link
		case FIFO:
			h.Typeflag = tar.TypeFifo
		case CharDevice:
			h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, 1, 3 // /dev/null
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("badinput: tar %q: %w", e.Path, err)
		}
		if e.Type != Regular {
			continue
		}
		if e.Zeros == 0 {
			if _, err := tw.Write(e.Data); err != nil {
				return err
			}
			continue
		}
		zeros := make([]byte, 1<<20)
		for left := e.Zeros; left > 0; {
			n := min(left, int64(len(zeros)))
			if _, err := tw.Write(zeros[:n]); err != nil {
				return err
			}
			left -= n
		}
	}
	return tw.Close()
}

// piece is part of an uncompressed stream: bytes, or a run of zeros.
type piece struct {
	data  []byte
	zeros int64
}

// recorder keeps what is written as pieces, runs of zeros by their length.
type recorder struct{ pieces []piece }

var zeroMiB = make([]byte, 1<<20)

func (r *recorder) Write(p []byte) (int, error) {
	if len(p) >= 4096 && len(p) <= len(zeroMiB) && bytes.Equal(p, zeroMiB[:len(p)]) {
		if n := len(r.pieces); n > 0 && r.pieces[n-1].data == nil {
			r.pieces[n-1].zeros += int64(len(p))
		} else {
			r.pieces = append(r.pieces, piece{zeros: int64(len(p))})
		}
		return len(p), nil
	}
	if n := len(r.pieces); n > 0 && r.pieces[n-1].data != nil {
		r.pieces[n-1].data = append(r.pieces[n-1].data, p...)
	} else {
		r.pieces = append(r.pieces, piece{data: append([]byte{}, p...)})
	}
	return len(p), nil
}

// flushed compresses b on its own, ending with a sync flush: the result is
// byte-aligned, refers to nothing before it, and any number of such parts
// followed by finalBlock is one deflate stream.
func flushed(b []byte) []byte {
	var out bytes.Buffer
	w, err := flate.NewWriter(&out, flate.BestCompression)
	must(err)
	_, err = w.Write(b)
	must(err)
	must(w.Flush())
	return out.Bytes()
}

// finalBlock is an empty final block with fixed codes: it ends a stream.
var finalBlock = []byte{0x03, 0x00}

var (
	zeroMiBOnce     sync.Once
	zeroMiBDeflated []byte
)

// zeroDeflate is a raw deflate stream of n zero bytes (with no final
// block): one compressed mebibyte of zeros, repeated. The repeat refers
// only to zeros before it, which the stream has just written.
func zeroDeflate(n int64) []byte {
	zeroMiBOnce.Do(func() { zeroMiBDeflated = flushed(zeroMiB) })
	var out bytes.Buffer
	for ; n >= int64(len(zeroMiB)); n -= int64(len(zeroMiB)) {
		out.Write(zeroMiBDeflated)
	}
	if n > 0 {
		out.Write(flushed(zeroMiB[:n]))
	}
	return out.Bytes()
}

// deflatePieces compresses pieces into one raw deflate stream and returns
// it with the CRC-32 and length of what it expands to.
func deflatePieces(pieces []piece) ([]byte, uint32, int64) {
	var out bytes.Buffer
	crc := uint32(0)
	var size int64
	for _, p := range pieces {
		if p.data != nil {
			out.Write(flushed(p.data))
			crc = crc32.Update(crc, crc32.IEEETable, p.data)
			size += int64(len(p.data))
			continue
		}
		out.Write(zeroDeflate(p.zeros))
		for left := p.zeros; left > 0; {
			n := min(left, int64(len(zeroMiB)))
			crc = crc32.Update(crc, crc32.IEEETable, zeroMiB[:n])
			left -= n
		}
		size += p.zeros
	}
	out.Write(finalBlock)
	return out.Bytes(), crc, size
}

// gzipPieces is a gzip file of pieces.
func gzipPieces(pieces []piece) []byte {
	body, crc, size := deflatePieces(pieces)
	out := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}
	out = append(out, body...)
	out = binary.LittleEndian.AppendUint32(out, crc)
	return binary.LittleEndian.AppendUint32(out, uint32(size))
}

func packZip(entries []Entry) ([]byte, error) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.Path, Method: zip.Deflate, Modified: mtime}
		data := e.Data
		switch e.Type {
		case Regular:
			h.SetMode(0o644)
		case Dir:
			h.Name += "/"
			h.SetMode(fs.ModeDir | 0o755)
		case Symlink, HardLink:
			h.SetMode(fs.ModeSymlink | 0o777)
			data = []byte(e.Link)
		case FIFO:
			h.SetMode(fs.ModeNamedPipe | 0o644)
		case CharDevice:
			h.SetMode(fs.ModeDevice | fs.ModeCharDevice | 0o644)
		}
		if e.Zeros > 0 {
			body, crc, size := deflatePieces([]piece{{zeros: e.Zeros}})
			h.CRC32, h.CompressedSize64, h.UncompressedSize64 = crc, uint64(len(body)), uint64(size)
			w, err := zw.CreateRaw(h)
			if err != nil {
				return nil, err
			}
			if _, err := w.Write(body); err != nil {
				return nil, err
			}
			continue
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, fmt.Errorf("badinput: zip %q: %w", e.Path, err)
		}
		if _, err := w.Write(data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// must panics on an error that writing to memory cannot have.
func must(err error) {
	if err != nil {
		panic(err)
	}
}

// ErrUnsupported says a tree entry cannot be made on this machine (a
// device without the privilege to make one); the caller skips the case.
var ErrUnsupported = fmt.Errorf("badinput: not possible on this machine")

// WriteTree makes entries under dir: files (of zeros, sparse), folders,
// links and special files. Paths are written as they are, raw bytes
// included.
func WriteTree(dir string, entries []Entry) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, filepath.FromSlash(e.Path))
		if e.Type != Dir {
			if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
				return err
			}
		}
		var err error
		switch e.Type {
		case Regular:
			if e.Zeros > 0 {
				err = sparseZeros(p, e.Zeros)
			} else {
				err = os.WriteFile(p, e.Data, 0o600)
			}
		case Dir:
			err = os.MkdirAll(p, 0o750)
		case Symlink:
			err = os.Symlink(e.Link, p)
		case HardLink:
			err = os.Link(filepath.Join(dir, filepath.FromSlash(e.Link)), p)
		case FIFO:
			err = syscall.Mkfifo(p, 0o644)
		case CharDevice:
			err = syscall.Mknod(p, syscall.S_IFCHR|0o644, 1<<8|3) // /dev/null
			if err != nil {
				return fmt.Errorf("%w: mknod %s: %v", ErrUnsupported, e.Path, err)
			}
		}
		if err != nil {
			return fmt.Errorf("badinput: %s: %w", e.Path, err)
		}
	}
	return nil
}

// sparseZeros makes a file of n zero bytes that takes no disk space.
func sparseZeros(p string, n int64) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if err := f.Truncate(n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
