package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// How tables write counts, versions, aliases, metrics, times and sizes.

// count is "1 version", "2 versions".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func joinInts(vs []int64) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.FormatInt(v, 10)
	}
	return strings.Join(s, ", ")
}

func parseVersion(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, usagef("version %q: want a positive number", s)
	}
	return v, nil
}

func formatAliases(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	names := make([]string, 0, len(m))
	for a := range m {
		names = append(names, a)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, a := range names {
		parts[i] = fmt.Sprintf("%s=%d", a, m[a])
	}
	return strings.Join(parts, ",")
}

func formatMetric(v float64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 4, 64)
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return printable(s)
}

// printable is s as the terminal may show it: quoted, with escapes, when
// it holds control characters or other runes a terminal would act on
// rather than show. File names, paths and free text come from users and
// archives, and a name holding an escape sequence would otherwise recolour
// the terminal, move its cursor or hide the lines before it.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}
