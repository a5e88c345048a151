package ml

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
)

// LoadIDX reads an MNIST-style pair of IDX files (images: ubyte [N,H,W];
// labels: ubyte [N]), gzip-compressed when the name ends in .gz, into
// grayscale Data scaled to [0, 1]. Fashion-MNIST ships in this format.
func LoadIDX(imagesPath, labelsPath string) (*Data, error) {
	imgDims, pixels, err := readIDX(imagesPath, 3)
	if err != nil {
		return nil, err
	}
	labDims, labels, err := readIDX(labelsPath, 1)
	if err != nil {
		return nil, err
	}
	if imgDims[0] != labDims[0] {
		return nil, fmt.Errorf("%s has %d images but %s has %d labels", imagesPath, imgDims[0], labelsPath, labDims[0])
	}
	d := &Data{
		Shape:  InputShape{Channels: 1, Height: imgDims[1], Width: imgDims[2]},
		Images: make([]float32, len(pixels)),
		Labels: make([]int32, len(labels)),
	}
	for i, p := range pixels {
		d.Images[i] = float32(p) / 255
	}
	for i, l := range labels {
		d.Labels[i] = int32(l)
	}
	return d, nil
}

func readIDX(path string, rank int) (dims []int, data []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, nil, fmt.Errorf("%s: reading header: %w", path, err)
	}
	// Magic: two zero bytes, type 0x08 (unsigned byte), number of dimensions.
	if magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || int(magic[3]) != rank {
		return nil, nil, fmt.Errorf("%s: not a rank-%d ubyte IDX file (magic % x)", path, rank, magic)
	}
	total := 1
	for range rank {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, nil, fmt.Errorf("%s: reading dimensions: %w", path, err)
		}
		if d == 0 || d > 1<<24 {
			return nil, nil, fmt.Errorf("%s: implausible dimension %d", path, d)
		}
		dims = append(dims, int(d))
		total *= int(d)
	}
	data = make([]byte, total)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, nil, fmt.Errorf("%s: reading %d values: %w", path, total, err)
	}
	return dims, data, nil
}
