// Long file: one conformance suite, whose cases every blob.Store must pass;
// read together, they are the contract a new backend has to meet.

// Package blobtest is the conformance suite every blob.Store implementation
// must pass, so that the backends stay interchangeable.
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/shoalml/shoal/internal/storage/blob"
)

// Run runs the suite. newStore must return an empty store that is not shared
// with any other call; it is called once per subtest, possibly in parallel.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"UnusualKeys", testUnusualKeys},
		{"Overwrite", testOverwrite},
		{"FailingReader", testFailingReader},
		{"SizeMismatch", testSizeMismatch},
		{"Stat", testStat},
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"List", testList},
		{"ListStopsEarly", testListStopsEarly},
		{"InvalidKeys", testInvalidKeys},
		{"ConcurrentDifferentKeys", testConcurrentDifferentKeys},
		{"ConcurrentSameKey", testConcurrentSameKey},
		{"CanceledContext", testCanceledContext},
		{"CanceledDuringPut", testCanceledDuringPut},
		{"Ping", testPing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

var errBoom = errors.New("blobtest: reader failed on purpose")

// data returns n deterministic pseudo-random bytes, different for each seed.
func data(seed byte, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

func put(t *testing.T, s blob.Store, key string, b []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("Put(%q, %d bytes) = %v; want nil", key, len(b), err)
	}
}

func get(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q) = %v; want nil", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): reading: %v", key, err)
	}
	return b
}

func wantContent(t *testing.T, s blob.Store, key string, want []byte) {
	t.Helper()
	if got := get(t, s, key); !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %d bytes (%.16x...); want %d bytes (%.16x...)", key, len(got), got, len(want), want)
	}
}

func wantNotFound(t *testing.T, s blob.Store, key string) {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err == nil {
		rc.Close()
	}
	if !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Get(%q) = %v; want ErrNotFound", key, err)
	}
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat(%q) = %v; want ErrNotFound", key, err)
	}
}

func listKeys(t *testing.T, s blob.Store, prefix string) []string {
	t.Helper()
	keys := []string{}
	err := s.List(t.Context(), prefix, func(info blob.Info) error {
		keys = append(keys, info.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q) = %v; want nil", prefix, err)
	}
	return keys
}

func testRoundTrip(t *testing.T, s blob.Store) {
	tests := []struct {
		name        string
		key         string
		data        []byte
		unknownSize bool
	}{
		{"empty", "empty", nil, false},
		{"empty unknown size", "empty-unknown", nil, true},
		{"small", "small.bin", []byte("hello, shoal"), false},
		{"small unknown size", "dir/small-unknown", []byte("hello again"), true},
		{"nested", "train/Black Sea Sprat/0001.png", data(1, 1000), false},
		{"5 MiB", "big/5mib", data(2, 5<<20), false},
		// Bigger than the S3 backend's part size: exercises multipart upload.
		{"17 MiB unknown size", "big/17mib-unknown", data(3, 17<<20), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := int64(len(tt.data))
			var r io.Reader = bytes.NewReader(tt.data)
			if tt.unknownSize {
				size = -1
				r = iotest.HalfReader(r) // hides bytes.Reader's Len/Seek
			}
			if err := s.Put(t.Context(), tt.key, r, size); err != nil {
				t.Fatalf("Put(%q, size %d) = %v; want nil", tt.key, size, err)
			}
			wantContent(t, s, tt.key, tt.data)
			info, err := s.Stat(t.Context(), tt.key)
			if err != nil || info.Size != int64(len(tt.data)) || info.Key != tt.key {
				t.Fatalf("Stat(%q) = %+v, %v; want size %d", tt.key, info, err, len(tt.data))
			}
		})
	}
}

// testUnusualKeys checks keys that are valid but need escaping in URLs.
func testUnusualKeys(t *testing.T, s blob.Store) {
	keys := []string{
		"with space/file name.jpg",
		"ünïcödé/鱼.png",
		"plus+sign",
		"percent%20encoded",
		"query?and#hash",
		"amp&eq=semi;colon",
		"..dots/.hidden/x..",
		"-dash/_under~tilde",
	}
	for i, key := range keys {
		put(t, s, key, []byte(key))
		wantContent(t, s, key, []byte(key))
		if i == 0 {
			if got := listKeys(t, s, "with space/"); !slices.Equal(got, []string{key}) {
				t.Fatalf("List(%q) = %q; want %q", "with space/", got, []string{key})
			}
		}
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if got := listKeys(t, s, ""); !slices.Equal(got, want) {
		t.Fatalf("List(\"\") = %q; want %q", got, want)
	}
}

func testOverwrite(t *testing.T, s blob.Store) {
	put(t, s, "k", data(1, 300))
	put(t, s, "k", []byte("shorter"))
	wantContent(t, s, "k", []byte("shorter"))
	if info, err := s.Stat(t.Context(), "k"); err != nil || info.Size != 7 {
		t.Fatalf("Stat(k) = %+v, %v; want size 7", info, err)
	}
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{"k"}) {
		t.Fatalf("List(\"\") = %q; want [k]", got)
	}
}

func testFailingReader(t *testing.T, s blob.Store) {
	tests := []struct {
		name   string
		before int // bytes the reader yields before failing
		size   func(before int) int64
	}{
		{"known size", 1000, func(n int) int64 { return int64(n) * 2 }},
		{"unknown size", 1000, func(int) int64 { return -1 }},
		{"immediately", 0, func(int) int64 { return -1 }},
		// Fails after the S3 backend has uploaded a first multipart part.
		{"unknown size after a part", 17 << 20, func(int) int64 { return -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := io.MultiReader(bytes.NewReader(data(4, tt.before)), iotest.ErrReader(errBoom))
			err := s.Put(t.Context(), "new", r, tt.size(tt.before))
			if !errors.Is(err, errBoom) {
				t.Fatalf("Put(new, failing reader) = %v; want an error wrapping %v", err, errBoom)
			}
			wantNotFound(t, s, "new")

			// A failed overwrite keeps the old object.
			old := []byte("old content")
			put(t, s, "existing", old)
			r = io.MultiReader(bytes.NewReader(data(5, tt.before)), iotest.ErrReader(errBoom))
			if err := s.Put(t.Context(), "existing", r, tt.size(tt.before)); !errors.Is(err, errBoom) {
				t.Fatalf("Put(existing, failing reader) = %v; want an error wrapping %v", err, errBoom)
			}
			wantContent(t, s, "existing", old)
			if got := listKeys(t, s, ""); !slices.Equal(got, []string{"existing"}) {
				t.Fatalf("List(\"\") = %q; want [existing]", got)
			}
			if err := s.Delete(t.Context(), "existing"); err != nil {
				t.Fatalf("Delete(existing) = %v; want nil", err)
			}
		})
	}
}

func testSizeMismatch(t *testing.T, s blob.Store) {
	tests := []struct {
		name string
		data []byte
		size int64
	}{
		{"shorter than size", []byte("12345"), 10},
		{"longer than size", []byte("1234567890"), 5},
		{"empty but size given", nil, 1},
		{"size zero but content", []byte("x"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Put(t.Context(), "k", bytes.NewReader(tt.data), tt.size)
			if !errors.Is(err, blob.ErrSizeMismatch) {
				t.Fatalf("Put(k, %d bytes, size %d) = %v; want ErrSizeMismatch", len(tt.data), tt.size, err)
			}
			wantNotFound(t, s, "k")
		})
	}
}

func testStat(t *testing.T, s blob.Store) {
	// S3 keeps modification times to the second, and a server's clock may be
	// a little off from ours.
	before := time.Now().Add(-time.Minute)
	put(t, s, "a/b.bin", data(6, 4321))
	after := time.Now().Add(time.Minute)
	info, err := s.Stat(t.Context(), "a/b.bin")
	if err != nil {
		t.Fatalf("Stat(a/b.bin) = %v; want nil", err)
	}
	if info.Key != "a/b.bin" || info.Size != 4321 || info.ModTime.Before(before) || info.ModTime.After(after) {
		t.Fatalf("Stat(a/b.bin) = %+v; want key a/b.bin, size 4321, mod time in [%v, %v]", info, before, after)
	}
}

func testMissing(t *testing.T, s blob.Store) {
	wantNotFound(t, s, "never/written")
	put(t, s, "dir/file", []byte("x"))
	// A prefix of an existing key is not an object.
	wantNotFound(t, s, "dir")
	wantNotFound(t, s, "dir/file/below")
}

func testDelete(t *testing.T, s blob.Store) {
	put(t, s, "d/e/f", []byte("x"))
	put(t, s, "d/g", []byte("y"))
	for i := range 2 { // the second delete finds nothing, which is fine
		if err := s.Delete(t.Context(), "d/e/f"); err != nil {
			t.Fatalf("Delete(d/e/f) #%d = %v; want nil", i+1, err)
		}
	}
	wantNotFound(t, s, "d/e/f")
	wantContent(t, s, "d/g", []byte("y"))
	if err := s.Delete(t.Context(), "never/written"); err != nil {
		t.Fatalf("Delete(never/written) = %v; want nil", err)
	}
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{"d/g"}) {
		t.Fatalf("List(\"\") = %q; want [d/g]", got)
	}
	// The key's former directory can hold an object again.
	put(t, s, "d/e/f", []byte("z"))
	wantContent(t, s, "d/e/f", []byte("z"))
}

func testList(t *testing.T, s blob.Store) {
	// Chosen so that directory order and byte order differ: '-' < '.' < '/'.
	keys := []string{"b0", "a/c/d", "ab", "a.b", "b/2", "a/b", "a-z", "b/1", "test/Trout/1.jpg", "train/Trout/1.jpg"}
	sizes := map[string]int64{}
	for i, k := range keys {
		put(t, s, k, data(byte(i), i*10))
		sizes[k] = int64(i * 10)
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a-z", "a.b", "a/b", "a/c/d", "ab", "b/1", "b/2", "b0", "test/Trout/1.jpg", "train/Trout/1.jpg"}},
		{"a", []string{"a-z", "a.b", "a/b", "a/c/d", "ab"}},
		{"a/", []string{"a/b", "a/c/d"}},
		{"a/c", []string{"a/c/d"}},
		{"a/c/d", []string{"a/c/d"}},
		{"b/", []string{"b/1", "b/2"}},
		{"b", []string{"b/1", "b/2", "b0"}},
		{"t", []string{"test/Trout/1.jpg", "train/Trout/1.jpg"}},
		{"train/", []string{"train/Trout/1.jpg"}},
		{"a/c/d/", []string{}},
		{"nope", []string{}},
		{"nope/deeper/", []string{}},
	}
	for _, tt := range tests {
		var got []string
		err := s.List(t.Context(), tt.prefix, func(info blob.Info) error {
			got = append(got, info.Key)
			if info.Size != sizes[info.Key] {
				return fmt.Errorf("info %+v: want size %d", info, sizes[info.Key])
			}
			if info.ModTime.IsZero() {
				return fmt.Errorf("info %+v: zero mod time", info)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("List(%q) = %v; want nil", tt.prefix, err)
		}
		if got == nil {
			got = []string{}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("List(%q) = %q; want %q", tt.prefix, got, tt.want)
		}
	}
}

func testListStopsEarly(t *testing.T, s blob.Store) {
	for i := range 5 {
		put(t, s, fmt.Sprintf("k%d", i), []byte{byte(i)})
	}
	errStop := errors.New("stop")
	var got []string
	err := s.List(t.Context(), "", func(info blob.Info) error {
		got = append(got, info.Key)
		if len(got) == 2 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) || !slices.Equal(got, []string{"k0", "k1"}) {
		t.Fatalf("List stopping after 2 = %v, saw %q; want %v, [k0 k1]", err, got, errStop)
	}
}

func testInvalidKeys(t *testing.T, s blob.Store) {
	keys := []string{
		"", "/abs", "trailing/", "double//slash", ".", "..", "./a", "a/./b", "../up", "a/..", "a/../b",
		`back\slash`, "nul\x00byte", "bad-utf8-\xff", strings.Repeat("k", blob.MaxKeyLen+1),
	}
	ctx := t.Context()
	for _, key := range keys {
		ops := map[string]error{
			"Put":    s.Put(ctx, key, strings.NewReader("x"), 1),
			"Stat":   func() error { _, err := s.Stat(ctx, key); return err }(),
			"Delete": s.Delete(ctx, key),
			"Get": func() error {
				rc, err := s.Get(ctx, key)
				if err == nil {
					rc.Close()
				}
				return err
			}(),
		}
		for op, err := range ops {
			if !errors.Is(err, blob.ErrInvalidKey) {
				t.Errorf("%s(%q) = %v; want ErrInvalidKey", op, key, err)
			}
		}
		if err := blob.ValidateKey(key); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v; want ErrInvalidKey", key, err)
		}
	}
	for _, prefix := range []string{"/a", "a//", "../", "a/../", `a\`, "a\x00", "./"} {
		err := s.List(ctx, prefix, func(blob.Info) error { return nil })
		if !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("List(%q) = %v; want ErrInvalidKey", prefix, err)
		}
	}
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Fatalf("List(\"\") after invalid puts = %q; want none", got)
	}
}

func testConcurrentDifferentKeys(t *testing.T, s blob.Store) {
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			b := data(byte(i), 10_000+i)
			errs[i] = s.Put(t.Context(), fmt.Sprintf("shard/%02d/obj", i), bytes.NewReader(b), int64(len(b)))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Put: %v", err)
	}
	for i := range n {
		wantContent(t, s, fmt.Sprintf("shard/%02d/obj", i), data(byte(i), 10_000+i))
	}
	if got := listKeys(t, s, "shard/"); len(got) != n {
		t.Fatalf("List(shard/) = %d keys; want %d", len(got), n)
	}
}

// testConcurrentSameKey races writers of one key against readers: every read
// must see one writer's whole content, never a mix or a partial object.
func testConcurrentSameKey(t *testing.T, s blob.Store) {
	const writers, readers = 8, 4
	versions := make([][]byte, writers)
	for i := range versions {
		versions[i] = data(byte(100+i), 64<<10)
	}
	isVersion := func(b []byte) bool {
		return slices.ContainsFunc(versions, func(v []byte) bool { return bytes.Equal(v, b) })
	}
	put(t, s, "hot", versions[0])

	var wg sync.WaitGroup
	errs := make(chan error, writers+readers*10)
	for i := range writers {
		wg.Go(func() {
			if err := s.Put(t.Context(), "hot", bytes.NewReader(versions[i]), int64(len(versions[i]))); err != nil {
				errs <- fmt.Errorf("Put(hot) #%d: %w", i, err)
			}
		})
	}
	for range readers {
		wg.Go(func() {
			for range 10 {
				rc, err := s.Get(t.Context(), "hot")
				if err != nil {
					errs <- fmt.Errorf("Get(hot): %w", err)
					return
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					errs <- fmt.Errorf("Get(hot): reading: %w", err)
					return
				}
				if !isVersion(b) {
					errs <- fmt.Errorf("Get(hot) = %d bytes matching no version written", len(b))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if b := get(t, s, "hot"); !isVersion(b) {
		t.Fatalf("Get(hot) after writers = %d bytes matching no version written", len(b))
	}
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{"hot"}) {
		t.Fatalf("List(\"\") = %q; want [hot]", got)
	}
}

func testCanceledContext(t *testing.T, s blob.Store) {
	put(t, s, "there", []byte("x"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ops := map[string]error{
		"Put":  s.Put(ctx, "new", strings.NewReader("x"), 1),
		"Stat": func() error { _, err := s.Stat(ctx, "there"); return err }(),
		"Get": func() error {
			rc, err := s.Get(ctx, "there")
			if err == nil {
				rc.Close()
			}
			return err
		}(),
		"List":   s.List(ctx, "", func(blob.Info) error { return nil }),
		"Delete": s.Delete(ctx, "there"),
		"Ping":   s.Ping(ctx),
	}
	for op, err := range ops {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s(canceled context) = %v; want context.Canceled", op, err)
		}
	}
	wantNotFound(t, s, "new")
	wantContent(t, s, "there", []byte("x"))
}

// cancelingReader cancels its context after its first read, then goes on
// yielding data as a slow client would until the store gives up.
type cancelingReader struct {
	cancel context.CancelFunc
	reads  int
}

func (r *cancelingReader) Read(p []byte) (int, error) {
	r.reads++
	if r.reads == 1 {
		r.cancel()
	}
	if r.reads > 1<<20 {
		return 0, errors.New("blobtest: store kept reading after cancellation")
	}
	clear(p)
	return len(p), nil
}

func testCanceledDuringPut(t *testing.T, s blob.Store) {
	for _, size := range []int64{-1, 1 << 20} {
		t.Run(fmt.Sprintf("size %d", size), func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			r := &cancelingReader{cancel: cancel}
			if err := s.Put(ctx, "k", io.LimitReader(r, 1<<20), size); !errors.Is(err, context.Canceled) {
				t.Fatalf("Put(k) canceled midway = %v; want context.Canceled", err)
			}
			wantNotFound(t, s, "k")
		})
	}
}

func testPing(t *testing.T, s blob.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping() = %v; want nil", err)
	}
}
