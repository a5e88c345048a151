package registry_test

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/services/registry"
)

// TestAliasesAndDelete: aliases resolve, pin their version against
// deletion, and deleting versions removes their artifact once unused.
func TestAliasesAndDelete(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		e := newEnv(t, cfg, envOptions{})
		ctx := t.Context()
		c := e.client
		a, b := classifier(5, 1), classifier(5, 2)
		mustUpload(t, c, spec("fish", fish...), a) // 1
		mustUpload(t, c, spec("fish"), b)          // 2, other bytes
		mustUpload(t, c, spec("fish"), a)          // 3, same bytes as 1

		if _, err := c.SetAlias(ctx, &registrypb.SetAliasRequest{Model: "fish", Alias: "production", Version: 1}); err != nil {
			t.Fatal(err)
		}
		got, err := c.GetVersion(ctx, &registrypb.GetVersionRequest{Model: "fish", Alias: "production"})
		if err != nil || got.GetVersion().GetVersion() != 1 || !slices.Equal(got.GetVersion().GetAliases(), []string{"production"}) {
			t.Errorf("GetVersion(@production) = %v, %v; want version 1 aliased production", got, err)
		}

		errs := []struct {
			name string
			call func() error
			code codes.Code
		}{
			{"delete aliased version", func() error {
				_, err := c.DeleteVersion(ctx, &registrypb.DeleteVersionRequest{Model: "fish", Version: 1})
				return err
			}, codes.FailedPrecondition},
			{"unknown model", func() error {
				_, err := c.GetVersion(ctx, &registrypb.GetVersionRequest{Model: "shark", Version: 1})
				return err
			}, codes.NotFound},
			{"unknown version", func() error {
				_, err := c.GetVersion(ctx, &registrypb.GetVersionRequest{Model: "fish", Version: 9})
				return err
			}, codes.NotFound},
			{"unknown alias", func() error {
				_, err := c.GetVersion(ctx, &registrypb.GetVersionRequest{Model: "fish", Alias: "staging"})
				return err
			}, codes.NotFound},
			{"alias to unknown version", func() error {
				_, err := c.SetAlias(ctx, &registrypb.SetAliasRequest{Model: "fish", Alias: "staging", Version: 9})
				return err
			}, codes.NotFound},
			{"delete unknown alias", func() error {
				_, err := c.DeleteAlias(ctx, &registrypb.DeleteAliasRequest{Model: "fish", Alias: "staging"})
				return err
			}, codes.NotFound},
			{"bad alias name", func() error {
				_, err := c.SetAlias(ctx, &registrypb.SetAliasRequest{Model: "fish", Alias: "Prod!", Version: 1})
				return err
			}, codes.InvalidArgument},
			{"download unknown version", func() error {
				s, err := c.DownloadArtifact(ctx, &registrypb.DownloadArtifactRequest{Model: "fish", Version: 9})
				if err == nil {
					_, err = s.Recv()
				}
				return err
			}, codes.NotFound},
			{"delete model with versions", func() error {
				_, err := c.DeleteModel(ctx, &registrypb.DeleteModelRequest{Name: "fish"})
				return err
			}, codes.FailedPrecondition},
			{"create existing model", func() error {
				_, err := c.CreateModel(ctx, &registrypb.CreateModelRequest{Name: "fish", Labels: fish})
				return err
			}, codes.AlreadyExists},
		}
		for _, tt := range errs {
			if err := tt.call(); status.Code(err) != tt.code {
				t.Errorf("%s = %v; want %v", tt.name, err, tt.code)
			}
		}

		// Version 3 shares version 1's bytes: deleting it keeps the blob.
		if _, err := c.DeleteVersion(ctx, &registrypb.DeleteVersionRequest{Model: "fish", Version: 3}); err != nil {
			t.Fatal(err)
		}
		if keys := e.blobKeys(t); len(keys) != 2 {
			t.Errorf("blobs after deleting version 3 = %v; want 2 (version 1 still uses its bytes)", keys)
		}
		// Move production, then version 1 can go, and its bytes with it.
		if _, err := c.SetAlias(ctx, &registrypb.SetAliasRequest{Model: "fish", Alias: "production", Version: 2}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DeleteVersion(ctx, &registrypb.DeleteVersionRequest{Model: "fish", Version: 1}); err != nil {
			t.Fatalf("DeleteVersion(1) after moving the alias = %v", err)
		}
		if keys := e.blobKeys(t); len(keys) != 1 || keys[0] != "registry/artifacts/sha256/"+sha(b) {
			t.Errorf("blobs = %v; want only version 2's", keys)
		}
		// Numbers are never reused.
		if v := mustUpload(t, c, spec("fish"), a); v.GetVersion() != 4 {
			t.Errorf("next version = %d; want 4", v.GetVersion())
		}
		m, err := c.GetModel(ctx, &registrypb.GetModelRequest{Name: "fish"})
		if err != nil || m.GetModel().GetAliases()["production"] != 2 || m.GetModel().GetLatestVersion() != 4 {
			t.Errorf("GetModel() = %v, %v; want production=2, latest 4", m, err)
		}

		// Everything can be removed, leaving nothing behind.
		if _, err := c.DeleteAlias(ctx, &registrypb.DeleteAliasRequest{Model: "fish", Alias: "production"}); err != nil {
			t.Fatal(err)
		}
		for _, v := range []int64{2, 4} {
			if _, err := c.DeleteVersion(ctx, &registrypb.DeleteVersionRequest{Model: "fish", Version: v}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.DeleteModel(ctx, &registrypb.DeleteModelRequest{Name: "fish"}); err != nil {
			t.Fatal(err)
		}
		e.assertEmpty(t)
	})
}

// TestListAndCompare covers ListModels/ListVersions filters and paging
// and CompareVersions.
func TestListAndCompare(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		e := newEnv(t, cfg, envOptions{})
		ctx := t.Context()
		c := e.client
		for i, acc := range []float64{0.5, 0.9, 0.7, 0.95} {
			s := spec("fish", fish...)
			s.Metrics = &registrypb.Metrics{TestAccuracy: acc, PerClass: []*registrypb.ClassMetrics{{Label: "Catfish", F1: acc}}}
			mustUpload(t, c, s, classifier(5, byte(i)))
		}
		for _, name := range []string{"cats", "birds"} {
			if _, err := c.CreateModel(ctx, &registrypb.CreateModelRequest{Name: name, Labels: []string{"a", "b"}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.SetAlias(ctx, &registrypb.SetAliasRequest{Model: "fish", Alias: "production", Version: 2}); err != nil {
			t.Fatal(err)
		}

		var names []string
		for token := ""; ; {
			resp, err := c.ListModels(ctx, &registrypb.ListModelsRequest{PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range resp.GetModels() {
				names = append(names, m.GetName())
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if want := []string{"birds", "cats", "fish"}; !slices.Equal(names, want) {
			t.Errorf("ListModels pages = %v; want %v", names, want)
		}

		tests := []struct {
			name string
			req  *registrypb.ListVersionsRequest
			want []int64
		}{
			{"all", &registrypb.ListVersionsRequest{}, []int64{1, 2, 3, 4}},
			{"descending", &registrypb.ListVersionsRequest{Descending: true}, []int64{4, 3, 2, 1}},
			{"min accuracy", &registrypb.ListVersionsRequest{MinTestAccuracy: 0.7}, []int64{2, 3, 4}},
			{"alias", &registrypb.ListVersionsRequest{Alias: "production"}, []int64{2}},
			{"descending pages of one", &registrypb.ListVersionsRequest{Descending: true, PageSize: 1, MinTestAccuracy: 0.8}, []int64{4, 2}},
		}
		for _, tt := range tests {
			var got []int64
			req := tt.req
			req.Model = "fish"
			for {
				resp, err := c.ListVersions(ctx, req)
				if err != nil {
					t.Fatalf("%s: ListVersions() = %v", tt.name, err)
				}
				for _, v := range resp.GetVersions() {
					got = append(got, v.GetVersion())
				}
				if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
					break
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s: ListVersions() = %v; want %v", tt.name, got, tt.want)
			}
		}
		if _, err := c.ListVersions(ctx, &registrypb.ListVersionsRequest{Model: "fish", PageToken: "garbage"}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("ListVersions(bad token) = %v; want InvalidArgument", err)
		}

		cmp, err := c.CompareVersions(ctx, &registrypb.CompareVersionsRequest{Model: "fish", A: 1, B: 2})
		if err != nil {
			t.Fatal(err)
		}
		deltas := map[string]*registrypb.MetricDelta{}
		for _, d := range cmp.GetDeltas() {
			deltas[d.GetName()] = d
		}
		if d := deltas["test_accuracy"]; d == nil || d.GetA() != 0.5 || d.GetB() != 0.9 || d.GetDelta() < 0.39 || d.GetDelta() > 0.41 {
			t.Errorf("test_accuracy delta = %v; want 0.5 -> 0.9", d)
		}
		if d := deltas["f1/Catfish"]; d == nil || d.GetB() != 0.9 {
			t.Errorf("f1/Catfish delta = %v; want b = 0.9", d)
		}
		if _, err := c.CompareVersions(ctx, &registrypb.CompareVersionsRequest{Model: "fish", A: 1, B: 7}); status.Code(err) != codes.NotFound {
			t.Errorf("CompareVersions(1, 7) = %v; want NotFound", err)
		}
	})
}

// recvWithin receives the next event, failing if it takes longer than d.
func recvWithin(t *testing.T, s registrypb.RegistryService_WatchAliasesClient, d time.Duration) *registrypb.WatchAliasesResponse {
	t.Helper()
	type result struct {
		msg *registrypb.WatchAliasesResponse
		err error
	}
	ch := make(chan result, 1)
	go func() {
		m, err := s.Recv()
		ch <- result{m, err}
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("WatchAliases.Recv() = %v", r.err)
		}
		return r.msg
	case <-timer.C:
		t.Fatalf("WatchAliases: no event within %s", d)
		return nil
	}
}

type event struct {
	typ     registrypb.AliasEventType
	model   string
	alias   string
	version int64
}

func asEvent(m *registrypb.WatchAliasesResponse) event {
	return event{m.GetType(), m.GetAlias().GetModel(), m.GetAlias().GetAlias(), m.GetAlias().GetVersion()}
}

// TestWatchAliases: a watcher gets the current aliases, SYNCED, then each
// change, whether made in its own registry process or in another one
// sharing the database, within a second; a reconnect starts over; the
// stream ends cleanly when the service stops.
func TestWatchAliases(t *testing.T) {
	const (
		current = registrypb.AliasEventType_ALIAS_EVENT_TYPE_CURRENT
		synced  = registrypb.AliasEventType_ALIAS_EVENT_TYPE_SYNCED
		set     = registrypb.AliasEventType_ALIAS_EVENT_TYPE_SET
		deleted = registrypb.AliasEventType_ALIAS_EVENT_TYPE_DELETED
	)
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		a := newEnv(t, cfg, envOptions{})
		b := newEnv(t, cfg, envOptions{blobs: a.blobs}) // a second replica on the same database
		ctx := t.Context()
		mustUpload(t, a.client, spec("fish", fish...), classifier(5, 1))
		mustUpload(t, a.client, spec("fish"), classifier(5, 2))
		mustUpload(t, a.client, spec("cats", "a", "b", "c", "d", "e"), classifier(5, 3))
		for _, req := range []*registrypb.SetAliasRequest{
			{Model: "fish", Alias: "production", Version: 1},
			{Model: "cats", Alias: "production", Version: 1},
		} {
			if _, err := a.client.SetAlias(ctx, req); err != nil {
				t.Fatal(err)
			}
		}

		watch := func(c registrypb.RegistryServiceClient, model string) registrypb.RegistryService_WatchAliasesClient {
			s, err := c.WatchAliases(ctx, &registrypb.WatchAliasesRequest{Model: model})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		all, fishOnly := watch(a.client, ""), watch(a.client, "fish")
		for _, tt := range []struct {
			s    registrypb.RegistryService_WatchAliasesClient
			want []event
		}{
			{all, []event{{current, "cats", "production", 1}, {current, "fish", "production", 1}, {synced, "", "", 0}}},
			{fishOnly, []event{{current, "fish", "production", 1}, {synced, "", "", 0}}},
		} {
			var rev int64
			for i, want := range tt.want {
				m := recvWithin(t, tt.s, 5*time.Second)
				if asEvent(m) != want {
					t.Errorf("event #%d = %v; want %v", i, asEvent(m), want)
				}
				if i > 0 && m.GetRevision() != rev {
					t.Errorf("event #%d revision %d; want the snapshot's %d", i, m.GetRevision(), rev)
				}
				rev = m.GetRevision()
			}
			if rev != 2 {
				t.Errorf("snapshot revision = %d; want 2", rev)
			}
		}

		// Changes through this replica and through the other one.
		changes := []struct {
			via  registrypb.RegistryServiceClient
			call func(registrypb.RegistryServiceClient) error
			want event
		}{
			{a.client, func(c registrypb.RegistryServiceClient) error {
				_, err := c.SetAlias(ctx, &registrypb.SetAliasRequest{Model: "fish", Alias: "production", Version: 2})
				return err
			}, event{set, "fish", "production", 2}},
			{b.client, func(c registrypb.RegistryServiceClient) error {
				_, err := c.SetAlias(ctx, &registrypb.SetAliasRequest{Model: "fish", Alias: "staging", Version: 1})
				return err
			}, event{set, "fish", "staging", 1}},
			{b.client, func(c registrypb.RegistryServiceClient) error {
				_, err := c.DeleteAlias(ctx, &registrypb.DeleteAliasRequest{Model: "fish", Alias: "staging"})
				return err
			}, event{deleted, "fish", "staging", 1}},
		}
		rev := int64(2)
		for i, ch := range changes {
			start := time.Now()
			if err := ch.call(ch.via); err != nil {
				t.Fatal(err)
			}
			for _, s := range []registrypb.RegistryService_WatchAliasesClient{all, fishOnly} {
				m := recvWithin(t, s, time.Second)
				if asEvent(m) != ch.want || m.GetRevision() != rev+1 {
					t.Errorf("change #%d: event %v rev %d; want %v rev %d", i, asEvent(m), m.GetRevision(), ch.want, rev+1)
				}
			}
			t.Logf("change #%d seen after %s", i, time.Since(start).Round(time.Millisecond))
			rev++
		}
		// A change to another model reaches only the unfiltered watcher.
		if _, err := b.client.SetAlias(ctx, &registrypb.SetAliasRequest{Model: "cats", Alias: "production", Version: 1}); err != nil {
			t.Fatal(err)
		}
		if m := recvWithin(t, all, time.Second); asEvent(m) != (event{set, "cats", "production", 1}) {
			t.Errorf("event %v; want cats production set", asEvent(m))
		}

		// A reconnecting client starts over: current state, then SYNCED.
		again := watch(b.client, "fish")
		if m := recvWithin(t, again, 5*time.Second); asEvent(m) != (event{current, "fish", "production", 2}) || m.GetRevision() != 6 {
			t.Errorf("after reconnect: %v rev %d; want current production=2 rev 6", asEvent(m), m.GetRevision())
		}
		if m := recvWithin(t, again, 5*time.Second); m.GetType() != synced {
			t.Errorf("after reconnect: %v; want SYNCED", asEvent(m))
		}

		// Stopping the service ends its streams cleanly.
		a.stop()
		for _, s := range []registrypb.RegistryService_WatchAliasesClient{all, fishOnly} {
			if _, err := s.Recv(); err != io.EOF {
				t.Errorf("Recv() after stop = %v; want io.EOF", err)
			}
		}
		s := watch(b.client, "shark")
		if _, err := s.Recv(); status.Code(err) != codes.NotFound {
			t.Errorf("WatchAliases(unknown model) = %v; want NotFound", err)
		}
	})
}

// TestWatchAliasesUnderConcurrentWrites: alias changes racing on two
// replicas reach a watcher each exactly once, with consecutive revisions.
func TestWatchAliasesUnderConcurrentWrites(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		a := newEnv(t, cfg, envOptions{})
		b := newEnv(t, cfg, envOptions{blobs: a.blobs})
		ctx := t.Context()
		mustUpload(t, a.client, spec("fish", fish...), classifier(5, 1))
		mustUpload(t, a.client, spec("fish"), classifier(5, 2))
		w, err := a.client.WatchAliases(ctx, &registrypb.WatchAliasesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if m := recvWithin(t, w, 5*time.Second); m.GetType() != registrypb.AliasEventType_ALIAS_EVENT_TYPE_SYNCED {
			t.Fatalf("first event = %v; want SYNCED", m)
		}
		const writers, each = 4, 5
		var wg sync.WaitGroup
		for i := range writers {
			c := []registrypb.RegistryServiceClient{a.client, b.client}[i%2]
			wg.Go(func() {
				for j := range each {
					alias := fmt.Sprintf("w%d", i)
					if _, err := c.SetAlias(ctx, &registrypb.SetAliasRequest{Model: "fish", Alias: alias, Version: int64(j%2 + 1)}); err != nil {
						t.Errorf("SetAlias(%s) = %v", alias, err)
					}
				}
			})
		}
		wg.Wait()
		perAlias := map[string]int{}
		for rev := int64(1); rev <= writers*each; rev++ {
			m := recvWithin(t, w, 5*time.Second)
			if m.GetRevision() != rev {
				t.Fatalf("event revision %d; want %d (none missed, none reordered)", m.GetRevision(), rev)
			}
			perAlias[m.GetAlias().GetAlias()]++
		}
		for i := range writers {
			if n := perAlias[fmt.Sprintf("w%d", i)]; n != each {
				t.Errorf("alias w%d: %d events; want %d", i, n, each)
			}
		}
	})
}

// TestAliasEventLogPruning: a registry process prunes alias events older
// than --registry.alias-event-retention at its first poll (keeping the
// newest), and a watch started on the pruned log works as before.
func TestAliasEventLogPruning(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		a := newEnv(t, cfg, envOptions{})
		ctx := t.Context()
		mustUpload(t, a.client, spec("fish", fish...), classifier(5, 1))
		mustUpload(t, a.client, spec("fish"), classifier(5, 2))
		setAlias := func(version int64) {
			t.Helper()
			if _, err := a.client.SetAlias(ctx, &registrypb.SetAliasRequest{Model: "fish", Alias: "production", Version: version}); err != nil {
				t.Fatalf("SetAlias(production, %d) = %v", version, err)
			}
		}
		setAlias(1)
		setAlias(2)
		setAlias(1)
		// Age every event past the retention; a process started now prunes
		// at its first poll.
		if err := a.gdb.Exec("UPDATE registry_alias_events SET created_at = ?", time.Now().Add(-30*24*time.Hour)).Error; err != nil {
			t.Fatal(err)
		}
		c := newEnv(t, cfg, envOptions{blobs: a.blobs, cfg: func(c *registry.Config) { c.WatchPollInterval = 10 * time.Millisecond }})
		deadline := time.Now().Add(10 * time.Second)
		for {
			var n int64
			if err := a.gdb.Table("registry_alias_events").Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			if n == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("alias events after pruning = %d; want 1 (the newest)", n)
			}
			time.Sleep(10 * time.Millisecond)
		}

		w, err := c.client.WatchAliases(ctx, &registrypb.WatchAliasesRequest{Model: "fish"})
		if err != nil {
			t.Fatal(err)
		}
		if m := recvWithin(t, w, 5*time.Second); m.GetType() != registrypb.AliasEventType_ALIAS_EVENT_TYPE_CURRENT || m.GetAlias().GetVersion() != 1 {
			t.Fatalf("first event of a new watch = %v; want CURRENT production=1", m)
		}
		recvWithin(t, w, 5*time.Second) // SYNCED
		setAlias(2)
		if m := recvWithin(t, w, 5*time.Second); m.GetType() != registrypb.AliasEventType_ALIAS_EVENT_TYPE_SET || m.GetAlias().GetVersion() != 2 {
			t.Errorf("watch after the change = %v; want SET production=2", m)
		}
	})
}
