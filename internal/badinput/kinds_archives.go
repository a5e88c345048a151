package badinput

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

// The kinds of trees, archives and model files.

// treePaths are the paths a tree reaches: every dataset path (the REST
// and console uploads send it packed as an archive).
func treeKind(name, about, pack string, tree []Entry, want map[Path]Outcome) Kind {
	return Kind{Name: name, About: about, Tree: tree, Pack: pack, Want: want}
}

func good(path string, seed int) Entry { return Entry{Path: path, Data: GoodPNG(seed)} }

func treeKinds() []Kind {
	dup := GoodPNG(200)
	return []Kind{
		treeKind("tree-empty", "an empty folder (an empty archive)", "", nil, map[Path]Outcome{
			ServerFolder:  refuse(codes.InvalidArgument, "it is empty"),
			BucketPrefix:  refuse(codes.NotFound, "no objects under"),
			ClientFolder:  refuse(codes.InvalidArgument, "it is empty"),
			ClientArchive: refuse(codes.InvalidArgument, "it is empty"),
			RESTUpload:    refuse(codes.InvalidArgument, "it is empty"),
			ConsoleUpload: refuse(codes.InvalidArgument, "it is empty"),
		}),
		treeKind("tree-unknown-split", "a split folder named training/", "", []Entry{good("train/Cat/a.png", 101), good("training/Cat/b.png", 102)},
			on(DatasetPaths, reject("unknown split folder", 1), map[Path]Outcome{ClientFolder: reject("outside the split/Label/file layout", 1)})),
		treeKind("tree-file-in-split", "a file directly in train/", "", []Entry{good("train/Cat/a.png", 103), good("train/b.png", 104)},
			on(DatasetPaths, reject("file outside a label folder", 1), map[Path]Outcome{ClientFolder: reject("outside the split/Label/file layout", 1)})),
		treeKind("tree-nested", "a folder inside a label folder", "", []Entry{good("train/Cat/a.png", 105), good("train/Cat/more/b.png", 106)},
			on(DatasetPaths, reject("nested folder", 1), map[Path]Outcome{ClientFolder: reject("outside the split/Label/file layout", 1)})),
		treeKind("tree-empty-label", "an empty label folder", "", []Entry{good("train/Cat/a.png", 107), {Path: "train/Dog", Type: Dir}},
			without(on(DatasetPaths, reject("empty label folder", 1), map[Path]Outcome{ClientFolder: skip(1)}), BucketPrefix)),
		treeKind("tree-hidden-files", "hidden files and folders (.DS_Store, .git)", "", []Entry{
			good("train/Cat/a.png", 108), {Path: "train/Cat/.DS_Store", Data: []byte("Bud1")}, {Path: ".git/HEAD", Data: []byte("ref: main\n")},
			{Path: "train/.cache/x.png", Data: GoodPNG(109)},
		}, on(DatasetPaths, skip(1))),
		treeKind("tree-top-level-files", "a README and a licence at the top", "", []Entry{
			good("train/Cat/a.png", 110), {Path: "README.md", Data: []byte("# Fish\n")}, {Path: "LICENSE", Data: []byte("MIT\n")},
		}, on(DatasetPaths, skip(1))),
		// Which of the two is stored first depends on the order the
		// workers finish in; the other is the conflict.
		treeKind("tree-same-image-twice", "one image under two labels", "", []Entry{{Path: "train/Cat/a.png", Data: dup}, {Path: "test/Dog/b.png", Data: dup}},
			on(DatasetPaths, reject("conflict: the same image is already in the dataset as", 1))),
		treeKind("tree-only-bad", "a tree whose one file is not an image", "", []Entry{{Path: "train/Cat/notes.txt", Data: []byte("notes")}},
			on(DatasetPaths, reject("not an image", 0))),
		treeKind("tree-symlink-outside", "a link to /etc/passwd", ".tar", []Entry{good("train/Cat/a.png", 111), {Path: "train/Cat/passwd.png", Type: Symlink, Link: "/etc/passwd"}},
			without(on(DatasetPaths, reject("links in archives are not imported", 1), map[Path]Outcome{
				ServerFolder: reject("symlink leads outside the import root", 1),
				ClientFolder: reject("not an image", 1), // the user's own file, read through the link
			}), BucketPrefix)),
		treeKind("tree-symlink-inside", "a link to an image beside it", ".tar", []Entry{good("train/Cat/a.png", 112), {Path: "train/Cat/b.png", Type: Symlink, Link: "a.png"}},
			without(on(DatasetPaths, reject("links in archives are not imported", 1), map[Path]Outcome{
				ServerFolder: accept(1), // the same image twice: one row, a duplicate
				ClientFolder: accept(1),
			}), BucketPrefix)),
		treeKind("tree-symlink-folder", "a label folder that is a link to another", ".tar", []Entry{good("train/Cat/a.png", 113), {Path: "train/Dog", Type: Symlink, Link: "Cat"}},
			without(on(DatasetPaths, reject("links in archives are not imported", 1), map[Path]Outcome{
				ServerFolder: reject("symlinked folders are not followed", 1),
				ClientFolder: reject("symlinked folders are not followed", 1),
			}), BucketPrefix)),
		treeKind("tree-broken-symlink", "a link to nothing", ".tar", []Entry{good("train/Cat/a.png", 114), {Path: "train/Cat/gone.png", Type: Symlink, Link: "nowhere.png"}},
			without(on(DatasetPaths, reject("links in archives are not imported", 1), map[Path]Outcome{
				ServerFolder: reject("broken symlink", 1),
				ClientFolder: reject("broken symlink", 1),
			}), BucketPrefix)),
		treeKind("tree-fifo", "a named pipe where an image should be", ".tar", []Entry{good("train/Cat/a.png", 115), {Path: "train/Cat/pipe.png", Type: FIFO}},
			without(on(DatasetPaths, reject("not a regular file", 1)), BucketPrefix)),
		treeKind("tree-device", "a character device where an image should be", ".tar", []Entry{good("train/Cat/a.png", 116), {Path: "train/Cat/null.png", Type: CharDevice}},
			without(on(DatasetPaths, reject("not a regular file", 1)), BucketPrefix)),
		treeKind("tree-zeros-200mib", "an image file of 200 MiB of zeros", ".zip", []Entry{good("train/Cat/a.png", 117), {Path: "train/Cat/zeros.png", Zeros: 200 << 20}},
			without(on(DatasetPaths, reject("more than the limit", 1)), BucketPrefix)),
	}
}

// archiveKind is an archive made of entries by Pack, in the format its
// file name says.
func archiveKind(name, about, file string, entries []Entry, want map[Path]Outcome) Kind {
	format := ".zip"
	for _, f := range []string{".tar.gz", ".tar"} {
		if strings.HasSuffix(file, f) {
			format = f
			break
		}
	}
	return craftedArchive(name, about, file, mustPack(format, entries), entries, want)
}

// craftedArchive is an archive made by hand from entries (cut, corrupted,
// misnamed).
func craftedArchive(name, about, file string, data []byte, entries []Entry, want map[Path]Outcome) Kind {
	return Kind{Name: name, About: about, Archive: &File{Name: file, Data: data}, Holds: entries, Want: want}
}

// ArchivePaths are the paths that take an archive whole.
var ArchivePaths = []Path{ClientArchive, RESTUpload, ConsoleUpload}

func mustPack(format string, entries []Entry) []byte {
	b, err := Pack(format, entries)
	if err != nil {
		panic(err)
	}
	return b
}

func archiveKinds() []Kind {
	a := func(seed int) Entry { return good("train/Cat/a.png", seed) }
	twoTar := []Entry{a(301), good("train/Cat/b.png", 302)}
	cutTar := mustPack(".tar", twoTar)
	cutTar = cutTar[:512+(len(twoTar[0].Data)+511)/512*512+512+len(twoTar[1].Data)/2] // inside the second member's data
	twoGz := []Entry{a(303), {Path: "train/Cat/b.png", Data: bytes.Repeat([]byte("0123456789abcdef"), 40000)}}
	gz := mustPack(".tar.gz", twoGz)
	twoZip := []Entry{a(304), good("train/Cat/b.png", 305)}
	zipped := mustPack(".zip", twoZip)
	inner := mustPack(".zip", []Entry{good("train/Cat/in.png", 306)})
	corrupt, corruptHolds := corruptZipEntry()
	return []Kind{
		archiveKind("archive-dotdot", "an entry ../../evil.png", "dotdot.tar", []Entry{a(310), good("../../evil.png", 311)},
			on(ArchivePaths, reject("unsafe archive path", 1))),
		archiveKind("archive-absolute", "an entry /tmp/evil.png", "absolute.zip", []Entry{a(312), good("/tmp/evil.png", 313)},
			on(ArchivePaths, reject("unsafe archive path", 1))),
		archiveKind("archive-only-unsafe", "an archive whose only entry is ../evil.png", "evil.tar", []Entry{good("../evil.png", 314)},
			on(ArchivePaths, refuse(codes.InvalidArgument, "../evil.png"))),
		archiveKind("archive-hardlink", "a hard link entry", "hardlink.tar", []Entry{a(315), {Path: "train/Cat/b.png", Type: HardLink, Link: "train/Cat/a.png"}},
			on(ArchivePaths, reject("links in archives are not imported", 1))),
		archiveKind("archive-device-zip", "a zip entry marked as a character device", "device.zip", []Entry{a(316), {Path: "train/Cat/null.png", Type: CharDevice}},
			on(ArchivePaths, reject("not a regular file", 1))),
		archiveKind("archive-same-name-twice", "two different images under one name", "twice.tar", []Entry{a(317), a(318)},
			on(ArchivePaths, accept(2))),
		archiveKind("archive-nested", "a zip inside the archive", "nested.zip", []Entry{a(319), {Path: "train/Cat/inner.zip", Data: inner}},
			on(ArchivePaths, reject("not an image", 1))),
		// Read in order, the entry's 200 MiB are read through to reach the
		// next member, and the archive's expansion bound stops that; a
		// zip's entry of the same (tree-zeros-200mib) is refused unread.
		archiveKind("archive-zeros-200mib-targz", "a .tar.gz with an entry of 200 MiB of zeros (200 kB compressed)", "zeros.tar.gz",
			[]Entry{a(320), {Path: "train/Cat/zeros.png", Zeros: 200 << 20}},
			on(ArchivePaths, Outcome{Class: Refuse, Code: codes.ResourceExhausted, Reason: "expands to more than the limit", Added: 1})),
		archiveKind("archive-gzip-bomb", "a .tar.gz that expands to 1 GiB", "bomb.tar.gz",
			[]Entry{a(321), {Path: "train/Cat/zeros.png", Zeros: 1 << 30}},
			on(ArchivePaths, Outcome{Class: Refuse, Code: codes.ResourceExhausted, Reason: "expands to more than the limit", Added: 1})),
		craftedArchive("archive-zip-overlap-bomb", "a zip of 200 entries that share one compressed 2 MB", "overlap.zip", overlapZip(200, MaxImageBytes), nil,
			on(ArchivePaths, refuse(codes.ResourceExhausted, "expands to more than the limit"))),
		craftedArchive("archive-too-many-entries", "a zip listing more entries than the server reads", "many.zip", manyEntries(MaxArchiveEntries+1), nil,
			on(ArchivePaths, refuse(codes.ResourceExhausted, "entries"))),
		craftedArchive("archive-truncated-tar", "a tar that ends inside its second entry", "cut.tar", cutTar, twoTar,
			on(ArchivePaths, Outcome{Class: Refuse, Code: codes.InvalidArgument, Reason: "truncated", Added: 1})),
		craftedArchive("archive-truncated-targz", "a .tar.gz cut short", "cut.tar.gz", gz[:len(gz)*2/3], twoGz,
			on(ArchivePaths, Outcome{Class: Refuse, Code: codes.InvalidArgument, Reason: "truncated", Added: 1})),
		craftedArchive("archive-truncated-zip", "a zip without its central directory", "cut.zip", zipped[:len(zipped)-30], twoZip,
			on(ArchivePaths, refuse(codes.InvalidArgument, "not a valid zip file"))),
		craftedArchive("archive-corrupt-entry", "a zip entry whose checksum does not match", "corrupt.zip", corrupt, corruptHolds,
			on(ArchivePaths, reject("checksum", 1))),
		craftedArchive("archive-not-an-archive", "a text file named .zip", "photos.zip", []byte("these are not photos\n"), nil,
			on(ArchivePaths, refuse(codes.InvalidArgument, "not a valid zip file"))),
		craftedArchive("archive-zip-named-tar", "a zip archive named .tar", "photos.tar", zipped, twoZip,
			on(ArchivePaths, refuse(codes.InvalidArgument, "is a zip file"))),
		craftedArchive("archive-unknown-extension", "an archive named .rar", "photos.rar", zipped, twoZip,
			on(ArchivePaths, refuse(codes.InvalidArgument, ".zip, .tar"), map[Path]Outcome{ClientArchive: {Class: Refuse, Code: codes.InvalidArgument, Reason: "not a folder or a .zip/.tar/.tar.gz archive", Local: true}})),
		craftedArchive("archive-empty-file", "an archive file of 0 bytes", "empty.zip", []byte{}, nil,
			on(ArchivePaths, refuse(codes.InvalidArgument, "is empty"))),
	}
}

// overlapZip is a zip of n entries that all point at one compressed
// stream of size zero bytes: read whole, they expand to n×size bytes.
func overlapZip(n int, size int64) []byte {
	body, crc, _ := deflatePieces([]piece{{zeros: size}})
	var b bytes.Buffer
	name := "train/Cat/0.png"
	local := make([]byte, 30)
	binary.LittleEndian.PutUint32(local[0:], 0x04034b50)
	binary.LittleEndian.PutUint16(local[4:], 20)
	binary.LittleEndian.PutUint16(local[8:], zip.Deflate)
	binary.LittleEndian.PutUint32(local[14:], crc)
	binary.LittleEndian.PutUint32(local[18:], uint32(len(body)))
	binary.LittleEndian.PutUint32(local[22:], uint32(size))
	binary.LittleEndian.PutUint16(local[26:], uint16(len(name)))
	b.Write(local)
	b.WriteString(name)
	b.Write(body)
	dirStart := b.Len()
	for i := range n {
		entry := "train/Cat/" + itoa(i) + ".png"
		h := make([]byte, 46)
		binary.LittleEndian.PutUint32(h[0:], 0x02014b50)
		binary.LittleEndian.PutUint16(h[4:], 20)
		binary.LittleEndian.PutUint16(h[6:], 20)
		binary.LittleEndian.PutUint16(h[10:], zip.Deflate)
		binary.LittleEndian.PutUint32(h[16:], crc)
		binary.LittleEndian.PutUint32(h[20:], uint32(len(body)))
		binary.LittleEndian.PutUint32(h[24:], uint32(size))
		binary.LittleEndian.PutUint16(h[28:], uint16(len(entry)))
		binary.LittleEndian.PutUint32(h[42:], 0) // every entry's data is the first one's
		b.Write(h)
		b.WriteString(entry)
	}
	dirEnd := b.Len()
	end := make([]byte, 22)
	binary.LittleEndian.PutUint32(end[0:], 0x06054b50)
	binary.LittleEndian.PutUint16(end[8:], uint16(n))
	binary.LittleEndian.PutUint16(end[10:], uint16(n))
	binary.LittleEndian.PutUint32(end[12:], uint32(dirEnd-dirStart))
	binary.LittleEndian.PutUint32(end[16:], uint32(dirStart))
	b.Write(end)
	return b.Bytes()
}

// manyEntries is a zip of n empty entries.
func manyEntries(n int) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := range n {
		if _, err := zw.CreateHeader(&zip.FileHeader{Name: "train/Cat/" + itoa(i) + ".png", Method: zip.Store}); err != nil {
			panic(err)
		}
	}
	must(zw.Close())
	return b.Bytes()
}

// corruptZipEntry is a zip of a good entry and one whose stored bytes no
// longer match its CRC-32, and the entries it was made from.
func corruptZipEntry() ([]byte, []Entry) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i, name := range []string{"train/Cat/a.png", "train/Cat/b.png"} {
		data := GoodPNG(330 + i)
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		must(err)
		_, err = w.Write(data)
		must(err)
	}
	must(zw.Close())
	out := b.Bytes()
	second := GoodPNG(331)
	i := bytes.Index(out, second)
	out[i+len(second)/2] ^= 0xff
	if crc32.ChecksumIEEE(out[i:i+len(second)]) == crc32.ChecksumIEEE(second) {
		panic("badinput: the corruption kept the checksum")
	}
	return out, []Entry{good("train/Cat/a.png", 330), good("train/Cat/b.png", 331)}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func modelKind(name, about, file string, data []byte, want Outcome) Kind {
	return Kind{Name: name, About: about, Model: &File{Name: file, Data: data}, Want: on(ModelPaths, want)}
}

func modelKinds() []Kind {
	good := Model.Bytes()
	external := append(append([]byte{}, good...), field(7, field(5, externalTensor("W2", "/etc/passwd")))...)
	return []Kind{
		modelKind("model-empty", "a model file of 0 bytes", "empty.onnx", []byte{}, refuse(codes.InvalidArgument, "no artifact")),
		modelKind("model-text", "a text file named .onnx", "model.onnx", []byte("this is not a model\n"), refuse(codes.InvalidArgument, "ONNX")),
		modelKind("model-image", "a PNG uploaded as a model", "model.onnx", GoodPNG(400), refuse(codes.InvalidArgument, "ONNX")),
		modelKind("model-truncated", "a valid model cut in half", "cut.onnx", good[:len(good)/2], refuse(codes.InvalidArgument, "ONNX")),
		modelKind("model-external-data", "a model whose tensor points at /etc/passwd", "external.onnx", external, refuse(codes.InvalidArgument, "external")),
		modelKind("model-wrong-input", "a valid model whose input is not the spec's (1×4×4)", "small.onnx",
			onnxtest.Classifier{Channels: 1, Height: 4, Width: 4, Classes: 3}.Bytes(), refuse(codes.InvalidArgument, "does not match the spec")),
	}
}

// externalTensor is an ONNX TensorProto whose data lives in an outside
// file at location.
func externalTensor(name, location string) []byte {
	var t []byte
	t = protowire.AppendTag(t, 8, protowire.BytesType)
	t = protowire.AppendString(t, name)
	var kv []byte
	kv = protowire.AppendTag(kv, 1, protowire.BytesType)
	kv = protowire.AppendString(kv, "location")
	kv = protowire.AppendTag(kv, 2, protowire.BytesType)
	kv = protowire.AppendString(kv, location)
	t = protowire.AppendTag(t, 13, protowire.BytesType)
	t = protowire.AppendBytes(t, kv)
	t = protowire.AppendTag(t, 14, protowire.VarintType)
	return protowire.AppendVarint(t, 1)
}

func field(num protowire.Number, v []byte) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}
