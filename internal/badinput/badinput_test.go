package badinput

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/imaging"
)

var kindName = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// TestKinds checks the table itself: enough kinds, unique names, one input
// each, a path for each, and archives that stay small.
func TestKinds(t *testing.T) {
	kinds := Kinds()
	if len(kinds) < 40 {
		t.Errorf("%d kinds; want at least 40", len(kinds))
	}
	seen := map[string]bool{}
	cases := 0
	for _, k := range kinds {
		if !kindName.MatchString(k.Name) || seen[k.Name] {
			t.Errorf("kind %q: want a unique lower-case name with dashes", k.Name)
		}
		seen[k.Name] = true
		inputs := 0
		for _, set := range []bool{k.File != nil, k.Tree != nil || (k.File == nil && k.Archive == nil && k.Model == nil), k.Archive != nil, k.Model != nil} {
			if set {
				inputs++
			}
		}
		if inputs != 1 {
			t.Errorf("kind %s has %d inputs; want one", k.Name, inputs)
		}
		if len(k.Reaches()) == 0 {
			t.Errorf("kind %s reaches no path", k.Name)
		}
		cases += len(k.Reaches())
		if k.Model == nil {
			name, b, err := k.Packed()
			if err != nil {
				t.Errorf("kind %s: Packed() = %v", k.Name, err)
			}
			if len(b) > 4<<20 {
				t.Errorf("kind %s: %s is %d bytes; want a small archive", k.Name, name, len(b))
			}
		}
	}
	t.Logf("%d kinds, %d kind×path cases", len(kinds), cases)
}

// TestImageKinds decodes every image kind as the servers do, with their
// limits: accepted ones decode to their Like, refused ones fail with
// their reason.
func TestImageKinds(t *testing.T) {
	lim := imaging.Limits{MaxBytes: MaxImageBytes, MaxPixels: 40_000_000}
	for _, k := range imageKinds() {
		img, info, err := imaging.Decode(k.File.Data, lim)
		want := k.Want[ServerFolder] // what imaging itself says: the folder path adds no limit of its own
		switch {
		case want.Class == Accept && err != nil:
			t.Errorf("%s: Decode() = %v; want the image", k.Name, err)
		case want.Class == Accept:
			if b := k.Like.Bounds(); info.Width != b.Dx() || info.Height != b.Dy() || img.Bounds().Dx() != b.Dx() || img.Bounds().Dy() != b.Dy() {
				t.Errorf("%s: Decode() = %dx%d (info %dx%d); want %dx%d", k.Name, img.Bounds().Dx(), img.Bounds().Dy(), info.Width, info.Height, b.Dx(), b.Dy())
			} else if d := MeanDiff(img, k.Like); d > 8 {
				t.Errorf("%s: Decode() differs from what a viewer shows by %.1f per channel; want at most 8", k.Name, d)
			}
		case err == nil:
			t.Errorf("%s: Decode() = %+v, nil; want an error with %q", k.Name, info, want.Reason)
		case !errors.Is(err, imaging.ErrInvalid) || !strings.Contains(err.Error(), want.Reason):
			t.Errorf("%s: Decode() = %v; want ErrInvalid with %q", k.Name, err, want.Reason)
		default:
			t.Logf("%s: %v", k.Name, err)
		}
	}
}
