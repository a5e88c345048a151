package registry

import (
	"flag"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/internal/testlog"
)

// TestPruneAliasEvents: pruning deletes events older than the cut-off but
// never the newest, and reading after a revision whose successors were
// pruned is ABORTED rather than a silent gap. (A watcher only falls that
// far behind when stalled for the whole retention, which a test cannot
// stage deterministically through the RPC; this drives the two halves
// directly.)
func TestPruneAliasEvents(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		var c Config
		c.RegisterFlags(flag.NewFlagSet("registry", flag.ContinueOnError))
		blobs, err := blob.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(c, Deps{Log: testlog.New(t), DB: dbtest.Open(t, cfg), Blobs: blobs})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		old, now := time.Now().Add(-30*24*time.Hour).UTC().Truncate(time.Second), time.Now().UTC().Truncate(time.Second)
		for rev, at := range map[int64]time.Time{1: old, 2: old, 3: old, 4: now} {
			if err := s.deps.DB.Create(&aliasEventRow{Revision: rev, Model: "fish", Alias: "production", Version: 1, Type: 2, CreatedAt: at}).Error; err != nil {
				t.Fatal(err)
			}
		}
		revisions := func() []int64 {
			t.Helper()
			var revs []int64
			if err := s.deps.DB.Model(&aliasEventRow{}).Order("revision").Pluck("revision", &revs).Error; err != nil {
				t.Fatal(err)
			}
			return revs
		}
		h := &handler{svc: s}

		if err := s.pruneAliasEvents(t.Context(), now.Add(-time.Hour)); err != nil {
			t.Fatalf("pruneAliasEvents() = %v", err)
		}
		if got := revisions(); len(got) != 1 || got[0] != 4 {
			t.Fatalf("events after pruning the old ones = %v; want [4]", got)
		}
		// Everything is older than a cut-off in the future, but the newest stays.
		if err := s.pruneAliasEvents(t.Context(), now.Add(time.Hour)); err != nil {
			t.Fatalf("pruneAliasEvents() = %v", err)
		}
		if got := revisions(); len(got) != 1 || got[0] != 4 {
			t.Fatalf("events after pruning everything = %v; want the newest, [4]", got)
		}

		if events, err := h.eventsAfter(t.Context(), "fish", 3); err != nil || len(events) != 1 || events[0].Revision != 4 {
			t.Errorf("eventsAfter(3) = %v, %v; want revision 4", events, err)
		}
		if events, err := h.eventsAfter(t.Context(), "", 4); err != nil || len(events) != 0 {
			t.Errorf("eventsAfter(4) = %v, %v; want none", events, err)
		}
		if _, err := h.eventsAfter(t.Context(), "fish", 1); status.Code(err) != codes.Aborted {
			t.Errorf("eventsAfter(1) with revisions 2 and 3 pruned = %v; want Aborted", err)
		}
	})
}
