// Package demodata writes Shoal's offline demo dataset: Fashion-MNIST
// images (Zalando Research, MIT licence, from Debian's dataset-fashion-mnist
// package) as PNG files laid out split/Label/file, as the original pipeline's
// bucket was, so a newcomer can import, train and predict with no photos of
// their own and no network.
package demodata

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// DefaultSource is where Debian's dataset-fashion-mnist package puts the
// IDX files.
const DefaultSource = "/usr/share/datasets/fashion-mnist"

// Labels are Fashion-MNIST's class names by class index; "T-shirt/top" has
// its slash replaced, since a label is a folder name.
var Labels = [10]string{"T-shirt top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// The default tree has the seed dataset's shape: 1,306 images (1,045 train,
// 261 test) over 5 classes.
var (
	smallClasses = []int{0, 1, 7, 8, 9} // T-shirt top, Trouser, Sneaker, Bag, Ankle boot
	smallTrain   = 1045
	smallTest    = 261
)

// Options say what to write.
type Options struct {
	// Source is the folder with the four *-ubyte.gz IDX files.
	Source string
	// Out is the tree's root; it is created if missing.
	Out string
	// Full writes all 70,000 images of all 10 classes instead of the
	// 1,306-image default.
	Full bool
}

// Summary counts what Generate wrote.
type Summary struct {
	// Counts maps "split/Label" to its number of images in the tree.
	Counts map[string]int
	// Total is the number of images in the tree: Written + Unchanged.
	Total int
	// Written is how many image files were written; Unchanged, how many were
	// there already with the same bytes and were left alone.
	Written, Unchanged int
	// Extra are image files in the tree's label folders that it does not
	// hold (an earlier run with other options left them), relative to Out.
	// An import of the folder imports them too.
	Extra []string
}

type split struct {
	name, images, labels string
	want                 int // images to take; 0 for all
}

// Generate writes the tree. It is deterministic: the same options give
// byte-identical files on every run. In the default tree, images whose
// pixels repeat an earlier one are skipped, so the tree imports as exactly
// 1,306 distinct images.
func Generate(ctx context.Context, o Options) (Summary, error) {
	if o.Source == "" {
		o.Source = DefaultSource
	}
	splits := []split{
		{"train", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", smallTrain},
		{"test", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", smallTest},
	}
	classes := smallClasses
	if o.Full {
		classes = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
		splits[0].want, splits[1].want = 0, 0
	}
	sum := Summary{Counts: map[string]int{}}
	for _, sp := range splits {
		images, rows, cols, err := readImages(filepath.Join(o.Source, sp.images))
		if err != nil {
			return sum, err
		}
		labels, err := readLabels(filepath.Join(o.Source, sp.labels))
		if err != nil {
			return sum, err
		}
		if len(labels) != len(images)/(rows*cols) {
			return sum, fmt.Errorf("demodata: %s has %d labels for %d images", sp.labels, len(labels), len(images)/(rows*cols))
		}
		picks := pick(images, rows*cols, labels, classes, sp.want)
		written, err := write(ctx, o.Out, sp.name, images, rows, cols, labels, picks)
		if err != nil {
			return sum, err
		}
		sum.Written += written
		sum.Unchanged += len(picks) - written
		extra, err := extraFiles(o.Out, sp.name, labels, picks)
		if err != nil {
			return sum, err
		}
		sum.Extra = append(sum.Extra, extra...)
		for _, i := range picks {
			sum.Counts[sp.name+"/"+Labels[labels[i]]]++
			sum.Total++
		}
	}
	if err := os.WriteFile(filepath.Join(o.Out, "NOTICE.md"), []byte(notice), 0o644); err != nil {
		return sum, fmt.Errorf("demodata: %w", err)
	}
	return sum, nil
}

// pick returns the indexes of the images to write: with want > 0, the
// first images of each class in file order, want split evenly over the
// classes (the first classes take the remainder), skipping repeated pixels.
func pick(images []byte, size int, labels []byte, classes []int, want int) []int {
	var out []int
	if want == 0 {
		for i, l := range labels {
			for _, c := range classes {
				if int(l) == c {
					out = append(out, i)
				}
			}
		}
		return out
	}
	quota := map[int]int{}
	for k, c := range classes {
		quota[c] = want / len(classes)
		if k < want%len(classes) {
			quota[c]++
		}
	}
	seen := map[[32]byte]bool{}
	for i, l := range labels {
		if quota[int(l)] == 0 {
			continue
		}
		h := sha256.Sum256(images[i*size : (i+1)*size])
		if seen[h] {
			continue
		}
		seen[h] = true
		quota[int(l)]--
		out = append(out, i)
	}
	return out
}

// fileName is where image i of a split goes, relative to the tree's root.
func fileName(splitName string, label byte, i int) string {
	return filepath.Join(splitName, Labels[label], fmt.Sprintf("%05d.png", i))
}

// write encodes the picked images as PNG files on every core, and returns
// how many it wrote: a file already there with the same bytes is left alone.
func write(ctx context.Context, out, splitName string, images []byte, rows, cols int, labels []byte, picks []int) (int, error) {
	for _, c := range Labels {
		if err := os.MkdirAll(filepath.Join(out, splitName, c), 0o755); err != nil {
			return 0, fmt.Errorf("demodata: %w", err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	enc := png.Encoder{CompressionLevel: png.DefaultCompression}
	var written atomic.Int64
	for _, i := range picks {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			img := &image.Gray{Pix: images[i*rows*cols : (i+1)*rows*cols], Stride: cols, Rect: image.Rect(0, 0, cols, rows)}
			var b bytes.Buffer
			if err := enc.Encode(&b, img); err != nil {
				return err
			}
			p := filepath.Join(out, fileName(splitName, labels[i], i))
			if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, b.Bytes()) {
				return nil
			}
			if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
				return fmt.Errorf("demodata: %w", err)
			}
			written.Add(1)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return int(written.Load()), err
	}
	// Label folders of classes not written would import as "empty label
	// folder" rejections.
	for _, c := range Labels {
		_ = os.Remove(filepath.Join(out, splitName, c)) // fails, as wanted, when not empty
	}
	return int(written.Load()), ctx.Err()
}

// extraFiles lists the files in a split's label folders that the picked
// images do not account for.
func extraFiles(out, splitName string, labels []byte, picks []int) ([]string, error) {
	want := make(map[string]bool, len(picks))
	for _, i := range picks {
		want[fileName(splitName, labels[i], i)] = true
	}
	var extra []string
	for _, c := range Labels {
		ents, err := os.ReadDir(filepath.Join(out, splitName, c))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("demodata: %w", err)
		}
		for _, e := range ents {
			rel := filepath.Join(splitName, c, e.Name())
			if !e.IsDir() && !want[rel] {
				extra = append(extra, rel)
			}
		}
	}
	return extra, nil
}

// IDX files: a big-endian magic (0x0803 images, 0x0801 labels), the
// dimensions, then unsigned bytes.

func readIDX(path string, magic uint32, dims int) ([]uint32, []byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("demodata: %s not found: install Debian's dataset-fashion-mnist package "+
			"(apt-get install dataset-fashion-mnist, or scripts/setup-demo-data.sh) or pass --source", path)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("demodata: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, nil, fmt.Errorf("demodata: %s: %w", path, err)
	}
	hdr := make([]uint32, 1+dims)
	if err := binary.Read(gz, binary.BigEndian, hdr); err != nil {
		return nil, nil, fmt.Errorf("demodata: %s: header: %w", path, err)
	}
	if hdr[0] != magic {
		return nil, nil, fmt.Errorf("demodata: %s: magic %#x, want %#x", path, hdr[0], magic)
	}
	n := 1
	for _, d := range hdr[1:] {
		n *= int(d)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(gz, data); err != nil {
		return nil, nil, fmt.Errorf("demodata: %s: %w", path, err)
	}
	return hdr[1:], data, nil
}

func readImages(path string) ([]byte, int, int, error) {
	dims, data, err := readIDX(path, 0x803, 3)
	if err != nil {
		return nil, 0, 0, err
	}
	return data, int(dims[1]), int(dims[2]), nil
}

func readLabels(path string) ([]byte, error) {
	_, data, err := readIDX(path, 0x801, 1)
	for _, l := range data {
		if int(l) >= len(Labels) {
			return nil, fmt.Errorf("demodata: %s: label %d out of range", path, l)
		}
	}
	return data, err
}

const notice = `# Shoal demo dataset: Fashion-MNIST

These images are from Fashion-MNIST by Zalando Research
(https://github.com/zalandoresearch/fashion-mnist), Copyright (c) 2017 Zalando SE,
released under the MIT licence:

> Permission is hereby granted, free of charge, to any person obtaining a copy of this
> software and associated documentation files (the "Software"), to deal in the Software
> without restriction, including without limitation the rights to use, copy, modify,
> merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
> permit persons to whom the Software is furnished to do so, subject to the following
> conditions:
>
> The above copyright notice and this permission notice shall be included in all copies
> or substantial portions of the Software.
>
> THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
> INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A
> PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT
> HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
> CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE
> OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.

They were converted from the IDX files of Debian's dataset-fashion-mnist package to
28x28 greyscale PNG files by ` + "`shoal demo-data`" + `, laid out split/Label/file. The file
name is the image's index in its Fashion-MNIST file (train or t10k). The label
"T-shirt/top" is written "T-shirt top", since a label is a folder name.
`
