package readme

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// block is one fenced ```sh or ```bash block of the README.
type block struct {
	line int    // the line of its opening fence, counting from 1
	text string // its lines, without the fences
	skip string // the reason given by a skip marker before it; empty: it runs
}

// skipMarker, alone on the line right before a block's fence (blank lines
// may come between), keeps the test from running that block; the reason in
// parentheses is required.
var skipMarker = regexp.MustCompile(`^<!-- readme-test: skip \((.+)\) -->$`)

// shellBlocks returns the README's ```sh and ```bash blocks in order. A
// skip marker that precedes anything but such a block is an error, as is
// a marker without a reason and a fence that is never closed.
func shellBlocks(readme string) ([]block, error) {
	var (
		blocks  []block
		cur     *block
		inOther bool // inside a fence of another language
		skip    string
		skipAt  int
		body    strings.Builder
	)
	sc := bufio.NewScanner(strings.NewReader(readme))
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		fence := strings.HasPrefix(l, "```")
		switch {
		case cur != nil && fence:
			cur.text = body.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(l + "\n")
		case inOther:
			inOther = !fence
		case fence:
			lang := strings.TrimSpace(strings.TrimPrefix(l, "```"))
			if lang != "sh" && lang != "bash" {
				if skip != "" {
					return nil, fmt.Errorf("line %d: the skip marker precedes a %q block, not a shell one", skipAt, lang)
				}
				inOther = true
				continue
			}
			cur = &block{line: n, skip: skip}
			body.Reset()
			skip = ""
		case strings.HasPrefix(l, "<!-- readme-test"):
			m := skipMarker.FindStringSubmatch(l)
			if m == nil {
				return nil, fmt.Errorf("line %d: %q is not of the form <!-- readme-test: skip (reason) -->", n, l)
			}
			skip, skipAt = m[1], n
		case strings.TrimSpace(l) != "" && skip != "":
			return nil, fmt.Errorf("line %d: the skip marker is followed by text, not a shell block", skipAt)
		}
	}
	if cur != nil || inOther {
		return nil, fmt.Errorf("a fence is never closed")
	}
	return blocks, sc.Err()
}

// outputPrefix starts a comment line that shows output: the lines the
// commands before it print, in that order, where "..." stands for any text.
const outputPrefix = "#   "

// expectedOutput returns a block's output lines (without the prefix).
func expectedOutput(text string) []string {
	var out []string
	for l := range strings.SplitSeq(text, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimLeft(l, " "), outputPrefix); ok {
			out = append(out, strings.TrimRight(rest, " "))
		}
	}
	return out
}

// missingOutput returns the first expected line that no line of output
// matches, each after the line the previous one matched; "" when all do.
func missingOutput(want []string, output string) string {
	got := strings.Split(output, "\n")
	i := 0
	for _, w := range want {
		parts := strings.Split(w, "...")
		for j, p := range parts {
			parts[j] = regexp.QuoteMeta(p)
		}
		re := regexp.MustCompile(`^` + strings.Join(parts, ".*") + `$`)
		for i < len(got) && !re.MatchString(strings.TrimRight(got[i], " ")) {
			i++
		}
		if i == len(got) {
			return w
		}
		i++
	}
	return ""
}

func TestShellBlocks(t *testing.T) {
	readme := "# T\n\n```sh\necho a\n#   a\n```\n\n```python\nprint(1)\n```\n" +
		"<!-- readme-test: skip (needs S3) -->\n\n```bash\nshoal x\n```\n```\nplain\n```\n"
	got, err := shellBlocks(readme)
	if err != nil {
		t.Fatalf("shellBlocks = %v", err)
	}
	want := []block{{line: 3, text: "echo a\n#   a\n"}, {line: 13, text: "shoal x\n", skip: "needs S3"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("shellBlocks = %+v; want %+v", got, want)
	}
	for _, bad := range []string{
		"<!-- readme-test: skip -->\n```sh\nx\n```\n",
		"<!-- readme-test: skip (why) -->\ntext\n```sh\nx\n```\n",
		"<!-- readme-test: skip (why) -->\n```python\nx\n```\n",
		"```sh\nx\n",
	} {
		if _, err := shellBlocks(bad); err == nil {
			t.Errorf("shellBlocks(%q) = nil error; want one", bad)
		}
	}
}

func TestMissingOutput(t *testing.T) {
	out := "first\n{\"a\":1,\"b\":[2,3],\"c\":4}\nshoal: model \"nope\" not found   \nexit 3\n"
	for _, c := range []struct {
		want    []string
		missing string
	}{
		{[]string{`{"a":1,"b":[...],...}`, "exit 3"}, ""},
		{[]string{`shoal: model "nope" not found`, "exit 3"}, ""},
		{[]string{"exit 3", "first"}, "first"}, // out of order
		{[]string{"firs"}, "firs"},             // whole lines only
	} {
		if got := missingOutput(c.want, out); got != c.missing {
			t.Errorf("missingOutput(%q) = %q; want %q", c.want, got, c.missing)
		}
	}
	if got := expectedOutput("cmd\n#   one\n# a comment\n  #   two  \n"); fmt.Sprint(got) != "[one two]" {
		t.Errorf("expectedOutput = %q; want [one two]", got)
	}
}

// TestREADMEMarkers checks, without a server, that the README's skip
// markers are well formed and that it has blocks to run.
func TestREADMEMarkers(t *testing.T) {
	text, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := shellBlocks(string(text))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	if run := slices.IndexFunc(blocks, func(b block) bool { return b.skip == "" }); run < 0 {
		t.Errorf("README.md: no shell block runs; got %d, all skipped", len(blocks))
	}
}
