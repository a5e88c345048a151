// Package scratch cleans folders of temporary files after a crash. A
// process killed while it writes a temporary file (a blob being staged, an
// upload being checked) leaves the file behind, and nothing names it
// again. Claim holds such a folder with a shared flock for as long as its
// user lives; the one that finds the folder unheld knows every matching
// file is a leftover and removes them all, so a restart after a crash
// frees their space at once, whatever else shares the folder.
package scratch

import (
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Claim removes the leftovers in dir and returns the folder held with a
// shared lock; keep it open while files may be written there (closing it
// releases the lock). match picks the files of this kind. Where another
// user holds the folder, or it cannot be locked, only files last modified
// more than staleAge ago are removed, since a live writer may own the
// others. It returns how many files it removed; cleaning is best effort.
func Claim(dir string, match func(name string) bool, staleAge time.Duration) (*os.File, int) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, remove(dir, match, time.Now().Add(-staleAge))
	}
	cutoff := time.Now().Add(-staleAge)
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		cutoff = time.Now()
	}
	n := remove(dir, match, cutoff)
	// Shared from now on: other users may write there too.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, n
	}
	return f, n
}

// remove deletes the regular files in dir that match and were last
// modified before cutoff.
func remove(dir string, match func(string) bool, cutoff time.Time) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if !match(e.Name()) {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && fi.ModTime().Before(cutoff) {
			if os.Remove(filepath.Join(dir, e.Name())) == nil {
				n++
			}
		}
	}
	return n
}
