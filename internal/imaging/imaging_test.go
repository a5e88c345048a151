package imaging_test

import (
	"bytes"
	"errors"
	"image/jpeg"
	"os"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

func TestValidate(t *testing.T) {
	webp, err := os.ReadFile("testdata/gopher.webp")
	if err != nil {
		t.Fatal(err)
	}
	png := imagingtest.PNG(40, 30, 1)
	jpg := imagingtest.JPEG(40, 30, 1)
	lim := imaging.Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 20}
	tests := []struct {
		name    string
		data    []byte
		lim     imaging.Limits
		want    imaging.Info
		wantErr string // substring; "" for success
	}{
		{"jpeg", jpg, lim, imaging.Info{Format: imaging.JPEG, Width: 40, Height: 30}, ""},
		{"png", png, lim, imaging.Info{Format: imaging.PNG, Width: 40, Height: 30}, ""},
		{"gif first frame", imagingtest.GIF(20, 10, 1), lim, imaging.Info{Format: imaging.GIF, Width: 20, Height: 10}, ""},
		{"bmp", imagingtest.BMP(8, 9, 1), lim, imaging.Info{Format: imaging.BMP, Width: 8, Height: 9}, ""},
		{"webp", webp, lim, imaging.Info{Format: imaging.WebP, Width: 75, Height: 100}, ""},
		{"empty", nil, lim, imaging.Info{}, "empty file (0 bytes)"},
		{"text", []byte("hello, this is not an image"), lim, imaging.Info{}, "not an image: unknown format"},
		{"truncated png", png[:len(png)/2], lim, imaging.Info{}, "truncated"},
		{"truncated jpeg", jpg[:len(jpg)/2], lim, imaging.Info{}, "truncated"},
		{"header only png", png[:20], lim, imaging.Info{}, "png header"},
		{"too many pixels", imagingtest.PNGBomb(100000, 100000), lim, imaging.Info{}, "100000x100000 is 10000000000 pixels, more than the limit of 1048576"},
		{"too many bytes", png, imaging.Limits{MaxBytes: 10}, imaging.Info{}, "more than the limit of 10"},
		{"no limits", png, imaging.Limits{}, imaging.Info{Format: imaging.PNG, Width: 40, Height: 30}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := imaging.Validate(tt.data, tt.lim)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, imaging.ErrInvalid) {
					t.Fatalf("Validate() = %v, %v; want ErrInvalid containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Validate() = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestThumbnail(t *testing.T) {
	tests := []struct {
		w, h, max, wantW, wantH int
	}{
		{400, 200, 100, 100, 50},
		{200, 400, 100, 50, 100},
		{50, 20, 100, 50, 20},
		{1000, 1, 64, 64, 1},
	}
	for _, tt := range tests {
		thumb, err := imaging.Thumbnail(imagingtest.PNG(tt.w, tt.h, 3), tt.max, imaging.Limits{})
		if err != nil {
			t.Fatalf("Thumbnail(%dx%d, %d) = %v", tt.w, tt.h, tt.max, err)
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(thumb))
		if err != nil || cfg.Width != tt.wantW || cfg.Height != tt.wantH {
			t.Errorf("Thumbnail(%dx%d, %d) = %dx%d JPEG (%v); want %dx%d", tt.w, tt.h, tt.max, cfg.Width, cfg.Height, err, tt.wantW, tt.wantH)
		}
	}
	if _, err := imaging.Thumbnail([]byte("nope"), 10, imaging.Limits{}); !errors.Is(err, imaging.ErrInvalid) {
		t.Errorf("Thumbnail(garbage) = %v; want ErrInvalid", err)
	}
}

func BenchmarkValidatePNG28(b *testing.B) {
	data := imagingtest.PNG(28, 28, 1)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := imaging.Validate(data, imaging.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// A file damaged in storage or on the way says so, whichever check finds
// it: the compressed stream, or PNG's checksum of a chunk.
func TestDamagedFileSaysCorrupt(t *testing.T) {
	good := imagingtest.PNG(24, 16, 1)
	idat := bytes.Index(good, []byte("IDAT"))
	stream := append([]byte{}, good...)
	stream[idat+8] ^= 0x55 // inside the zlib stream: flate fails
	crc := append([]byte{}, good...)
	n := int(crc[idat-4])<<24 | int(crc[idat-3])<<16 | int(crc[idat-2])<<8 | int(crc[idat-1])
	crc[idat+4+n] ^= 0xff // the IDAT chunk's stored CRC, after its data
	for name, data := range map[string][]byte{"compressed data": stream, "chunk checksum": crc} {
		_, err := imaging.Validate(data, imaging.Limits{})
		if err == nil || !strings.Contains(err.Error(), "corrupt: the file was damaged") {
			t.Errorf("Validate(a PNG with a damaged %s) = %v; want it to say the file is corrupt", name, err)
		}
	}
}
