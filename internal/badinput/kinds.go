package badinput

import (
	"archive/zip"
	"bytes"
	"image"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

// The limits the matrix's server runs with; the kinds are sized against
// them (an image just over MaxImageBytes, an archive that expands past
// MaxArchiveBytes).
const (
	MaxImageBytes = 2 << 20
	// MaxArchiveBytes is small, so that a stream expanding past it is cut
	// off after little work (decompressing is slow under -race).
	MaxArchiveBytes   = 8 << 20
	MaxArchiveEntries = 1000
	// MaxMessageBytes is the server's gRPC message limit (its smallest
	// allowed), which also bounds a REST body and each line of an upload
	// stream (twice this).
	MaxMessageBytes = 4 << 20
)

// Model is the classifier the predict paths run and the model paths
// upload versions of: 3 channels of 8×8, three labels.
var Model = onnxtest.Classifier{Channels: 3, Height: 8, Width: 8, Classes: 3}

// ModelLabels are Model's labels.
var ModelLabels = []string{"Cat", "Dog", "Fish"}

// imageKind is a kind of image file: accepted on every dataset and predict
// path when reason is empty (decoding to like), otherwise rejected by name
// on dataset paths and refused with InvalidArgument on predict paths, both
// with reason.
func imageKind(name, about, file string, data []byte, like image.Image, reason string) Kind {
	k := Kind{Name: name, About: about, File: &File{Name: file, Label: "Cat", Data: data}, Like: like}
	if reason == "" {
		k.Want = on(DatasetPaths, accept(1), on(PredictPaths, accept(0)))
		return k
	}
	k.Want = on(DatasetPaths, reject(reason, 0), on(PredictPaths, refuse(codes.InvalidArgument, reason)))
	return k
}

func imageKinds() []Kind {
	pic := Picture(24, 16, 1)
	pngBytes := encodePNG(pic)
	jpegBytes := encodeJPEG(pic, 92)

	truncPNG := pngBytes[:len(pngBytes)/2]
	truncJPEG := jpegBytes[:len(jpegBytes)*6/10]
	corruptPNG := append([]byte{}, pngBytes...)
	corruptPNG[bytes.Index(corruptPNG, []byte("IDAT"))+8] ^= 0x55 // a byte of the pixel data; its CRC no longer matches

	p16, p16like := png16(20, 14, 2)
	g16, g16like := gray16(16, 16)
	pal, palLike := paletted(18, 12, false)
	palT, palTLike := paletted(18, 12, true)
	anim, animLike := animatedGIF(24, 12)
	cmyk, cmykLike := cmykJPEG(24, 16, func(bx, by int) [4]uint8 {
		return [4]uint8{uint8(30 + 90*bx), uint8(200 - 80*by), uint8(60 * bx), uint8(20 * by)}
	})
	exifPic := Picture(24, 16, 3)
	webp, webpLike := webpLossless(10, 6, 255, 200, 30, 90)
	gray := image.NewGray(image.Rect(0, 0, 16, 12))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 5)
	}

	// A ZIP archive appended to a PNG: both a valid image and a valid
	// archive (the archive's offsets are relative to its end).
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	w, err := zw.Create("payload.txt")
	must(err)
	_, err = w.Write([]byte("not part of the picture"))
	must(err)
	must(zw.Close())
	polyglot := append(append([]byte{}, pngBytes...), zipped.Bytes()...)

	// A valid PNG made larger than MaxImageBytes by an ancillary text
	// chunk: accepted if the byte limit were not applied.
	var big bytes.Buffer
	big.Write(pngBytes[:33]) // signature and IHDR
	pngChunk(&big, "tEXt", append([]byte("Comment\x00"), bytes.Repeat([]byte("x"), MaxImageBytes+1024)...))
	big.Write(pngBytes[33:])

	// A valid PNG larger than the server's message limit: it cannot travel
	// in one message at all.
	var huge bytes.Buffer
	huge.Write(pngBytes[:33])
	pngChunk(&huge, "tEXt", append([]byte("Comment\x00"), bytes.Repeat([]byte("y"), MaxMessageBytes+(1<<20))...))
	huge.Write(pngBytes[33:])
	overMessage := imageKind("over-message-limit", "a valid PNG larger than the server's message limit", "huge.png", huge.Bytes(), nil, "more than the limit of")
	for p, o := range map[Path]Outcome{
		ClientFolder:  {Class: Refuse, Code: codes.ResourceExhausted, Reason: "in one message", Partial: true},
		RESTUpload:    {Class: Refuse, Code: codes.ResourceExhausted, Reason: "over the server's limit", Partial: true},
		ConsoleUpload: refuse(codes.ResourceExhausted, "over the server's limit"),
		PredictForm:   refuse(codes.ResourceExhausted, "over the limit"),
		PredictGRPC:   refuse(codes.ResourceExhausted, "larger than max"),
		PredictREST:   refuse(codes.ResourceExhausted, "over the limit"),
		InferTyped:    refuse(codes.ResourceExhausted, "larger than max"),
		InferRaw:      refuse(codes.ResourceExhausted, "larger than max"),
		InferREST:     refuse(codes.ResourceExhausted, "over the limit"),
	} {
		overMessage.Want[p] = o
	}

	heic := []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic\x00\x00\x00\x00")
	tiff := append([]byte("II*\x00\x08\x00\x00\x00"), make([]byte, 64)...)
	svg := []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>`)
	gifJS := []byte("GIF89a=1;alert(document.domain);//" + strings.Repeat(" ", 40))
	gifNoFrames := []byte("GIF89a\x04\x00\x04\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff\x3b")

	return []Kind{
		imageKind("empty", "a file of 0 bytes", "empty.png", []byte{}, nil, "empty file"),
		imageKind("text-named-png", "a text file named .png", "notes.png", []byte("These are my notes.\n"), nil, "not an image"),
		imageKind("html-named-jpg", "an HTML page with a script, named .jpg", "photo.jpg", []byte("<!DOCTYPE html><html><script>alert(1)</script></html>"), nil, "not an image"),
		imageKind("truncated-png", "a PNG cut in half", "cut.png", truncPNG, nil, "truncated"),
		imageKind("truncated-jpeg", "a JPEG cut at 60%", "cut.jpg", truncJPEG, nil, "truncated"),
		imageKind("corrupt-png", "a PNG with a flipped byte in its pixel data", "flipped.png", corruptPNG, nil, "corrupt"),
		imageKind("gif-no-frames", "a GIF with a header and no frame", "empty.gif", gifNoFrames, nil, "missing image data"),
		imageKind("png-zero-width", "a PNG whose header says 0 pixels wide", "zero.png", pngFile(0, 10, 8, 2, zlibBytes(nil)), nil, "png header"),
		imageKind("png-bomb-header", "a PNG header claiming 100000×100000 pixels, no data", "bomb.png", pngFile(100000, 100000, 8, 2, nil), nil, "pixels, more than the limit"),
		imageKind("png-bomb", "a 20000×20000 grayscale PNG of zeros: 400 MB of pixels in 400 kB", "bomb.png", pngBomb(20000, 20000), nil, "pixels, more than the limit"),
		imageKind("jpeg-bomb-header", "a JPEG frame header claiming 65000×65000 pixels", "bomb.jpg", jpegBomb(65000, 65000), nil, "pixels, more than the limit"),
		imageKind("gif-bomb-header", "a GIF screen of 65535×65535 around one pixel", "bomb.gif", gifBomb(65535, 65535), nil, "pixels, more than the limit"),
		imageKind("bmp-bomb-header", "a BMP header claiming 100000×100000 pixels", "bomb.bmp", bmpBomb(100000, 100000), nil, "pixels, more than the limit"),
		imageKind("over-byte-limit", "a valid PNG just over the byte limit (a large text chunk)", "large.png", big.Bytes(), nil, "more than the limit of"),
		overMessage,
		imageKind("tiff", "a TIFF, a format Shoal does not read", "scan.tiff", tiff, nil, "not an image"),
		imageKind("svg", "an SVG drawing", "logo.svg", svg, nil, "not an image"),
		imageKind("heic", "an iPhone HEIC photo's header", "IMG_0001.HEIC", heic, nil, "not an image"),
		imageKind("polyglot-gif-script", "a script that starts with a GIF signature", "x.gif", gifJS, nil, "pixels, more than the limit"),
		imageKind("polyglot-png-zip", "a PNG with a ZIP archive appended: a valid image", "both.png", polyglot, pic, ""),
		imageKind("png-16bit", "a 16-bit RGBA PNG", "deep.png", p16, p16like, ""),
		imageKind("png-gray-16bit", "a 16-bit grayscale PNG", "gray16.png", g16, g16like, ""),
		imageKind("jpeg-cmyk", "an Adobe CMYK JPEG (four components)", "print.jpg", cmyk, cmykLike, ""),
		imageKind("png-palette", "a paletted PNG", "palette.png", pal, palLike, ""),
		imageKind("png-palette-alpha", "a paletted PNG with a translucent colour", "palette-alpha.png", palT, palTLike, ""),
		imageKind("gif-animated", "an animated GIF of three different frames: its first is read", "anim.gif", anim, animLike, ""),
		imageKind("jpeg-exif-rotated", "a JPEG whose EXIF orientation (6) turns it upright", "IMG_0002.jpg", exifJPEG(exifPic, 6), Orient(exifPic, 6), ""),
		imageKind("jpeg-exif-mirrored", "a JPEG whose EXIF orientation (2) mirrors it", "mirror.jpg", exifJPEG(exifPic, 2), Orient(exifPic, 2), ""),
		imageKind("png-tall", "a 1×3000 PNG", "tall.png", encodePNG(Picture(1, 3000, 4)), Picture(1, 3000, 4), ""),
		imageKind("png-wide", "a 3000×1 PNG", "wide.png", encodePNG(Picture(3000, 1, 5)), Picture(3000, 1, 5), ""),
		imageKind("png-1x1", "a PNG of one pixel", "dot.png", encodePNG(Picture(1, 1, 6)), Picture(1, 1, 6), ""),
		imageKind("png-named-jpg", "a PNG named .jpg", "really-a-png.jpg", encodePNG(Picture(16, 8, 7)), Picture(16, 8, 7), ""),
		imageKind("jpeg-no-extension", "a JPEG named without an extension", "IMG_0003", encodeJPEG(Picture(16, 8, 8), 92), Picture(16, 8, 8), ""),
		imageKind("jpeg-trailing-bytes", "a JPEG with bytes after its end marker", "trailing.jpg", append(encodeJPEG(Picture(16, 8, 9), 92), "trailing bytes"...), Picture(16, 8, 9), ""),
		imageKind("jpeg-gray", "a grayscale JPEG", "gray.jpg", encodeJPEG(gray, 95), gray, ""),
		imageKind("webp-lossless", "a lossless WebP", "flat.webp", webp, webpLike, ""),
		imageKind("bmp", "a 24-bit BMP", "picture.bmp", encodeBMP(Picture(12, 9, 10)), Picture(12, 9, 10), ""),
	}
}

// nameKind is a good image under a bad (or unusual) name or label.
func nameKind(name, about, file, label string, want map[Path]Outcome) Kind {
	return Kind{Name: name, About: about, File: &File{Name: file, Label: label, Data: GoodPNG(len(name) + len(file) + len(label))}, Want: want}
}

func nameKinds() []Kind {
	long := strings.Repeat("n", 1100) + ".png"
	max255 := strings.Repeat("m", 251) + ".png"
	longLabel := strings.Repeat("L", 300)
	return []Kind{
		nameKind("name-not-utf8", "a file name in Latin-1 (not UTF-8)", "caf\xe9.png", "Cat", map[Path]Outcome{
			ServerFolder:  reject("file name is not valid UTF-8", 0),
			ClientFolder:  reject("file name is not valid UTF-8", 0),
			ClientArchive: reject("file name is not valid UTF-8", 0),
			RESTUpload:    refuse(codes.InvalidArgument, "UTF-8"),
		}),
		nameKind("name-too-long", "a file name of 1,104 bytes", long, "Cat", map[Path]Outcome{
			ClientArchive: reject("file name too long", 0),
			RESTUpload:    reject("file name too long", 0),
		}),
		nameKind("name-255-bytes", "a file name of 255 bytes, the most a file system holds", max255, "Cat", on(DatasetPaths, accept(1))),
		nameKind("label-slash", "a label with a slash", "x.png", "Cat/Kitten", map[Path]Outcome{
			ServerFolder:  reject("nested folder", 0),
			BucketPrefix:  reject("nested folder", 0),
			ClientFolder:  reject("outside the split/Label/file layout", 0),
			ClientArchive: reject("nested folder", 0),
			RESTUpload:    reject("label contains a slash", 0),
			ConsoleUpload: reject("label contains a slash", 0),
		}),
		nameKind("label-backslash", "a label with a backslash", "x.png", `Cat\Kitten`, on(DatasetPaths, reject("label contains a slash", 0), map[Path]Outcome{
			BucketPrefix:  reject("backslash", 0),
			ClientArchive: reject("backslash", 0),
		})),
		// S3 lists keys in XML, which cannot carry control characters: the
		// test's S3 server lists this key garbled, so the bucket path is
		// left out.
		nameKind("label-escape", "a label with a terminal escape sequence", "x.png", "Cat\x1b[31m",
			without(on(DatasetPaths, reject("label contains a control character", 0)), BucketPrefix)),
		nameKind("label-newline", "a label with a newline", "x.png", "Cat\nDog", without(on(DatasetPaths, reject("label contains a control character", 0)), BucketPrefix, ConsoleUpload)),
		nameKind("label-not-utf8", "a label in Latin-1 (not UTF-8)", "x.png", "Caf\xe9", map[Path]Outcome{
			ServerFolder:  reject("label is not valid UTF-8", 0),
			ClientFolder:  reject("label is not valid UTF-8", 0),
			ClientArchive: reject("label is not valid UTF-8", 0),
			RESTUpload:    refuse(codes.InvalidArgument, "UTF-8"),
		}),
		// A file system holds no name over 255 bytes, and neither does an
		// S3 server that keeps objects as files (the test's does).
		nameKind("label-too-long", "a label of 300 bytes", "x.png", longLabel, without(on(DatasetPaths, reject("label longer than 255 bytes", 0)), ServerFolder, ClientFolder, BucketPrefix)),
		nameKind("label-hidden", "a label folder whose name starts with a dot (.ipynb_checkpoints)", "x.png", ".ipynb_checkpoints", on(DatasetPaths, skip(0), map[Path]Outcome{
			RESTUpload:    reject("label starts with '.'", 0),
			ConsoleUpload: reject("label starts with '.'", 0),
		})),
		nameKind("label-unicode", "a label in German with an emoji", "x.png", "Große Fische 🐟", on(DatasetPaths, accept(1))),
		nameKind("label-empty", "an empty label", "x.png", "", map[Path]Outcome{
			ClientArchive: reject("file outside a label folder", 0),
			RESTUpload:    reject("empty label", 0),
		}),
	}
}
