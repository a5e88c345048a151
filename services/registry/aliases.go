package registry

import (
	"context"
	"database/sql"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"gorm.io/gorm"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/storage/db"
)

func (h *handler) SetAlias(ctx context.Context, req *registrypb.SetAliasRequest) (*registrypb.SetAliasResponse, error) {
	var a aliasRow
	err := h.db(ctx).Transaction(func(tx *gorm.DB) error {
		m, err := findModel(tx, req.GetModel())
		if err != nil {
			return err
		}
		// Locked, so that the version cannot be deleted before the alias
		// pointing at it commits.
		if _, err := findVersion(tx, m, req.GetVersion(), true); err != nil {
			return err
		}
		rev, err := bumpRevision(tx)
		if err != nil {
			return err
		}
		a, err = findAlias(tx, m, req.GetAlias())
		switch {
		case status.Code(err) == codes.NotFound:
			a = aliasRow{ModelID: m.ID, Name: req.GetAlias(), Version: req.GetVersion()}
			if err := tx.Create(&a).Error; err != nil {
				return fmt.Errorf("create alias: %w", err)
			}
		case err != nil:
			return err
		default:
			a.Version = req.GetVersion()
			if err := tx.Save(&a).Error; err != nil {
				return fmt.Errorf("move alias: %w", err)
			}
		}
		return tx.Create(&aliasEventRow{
			Revision: rev, Model: m.Name, Alias: a.Name, Version: a.Version,
			Type: int32(registrypb.AliasEventType_ALIAS_EVENT_TYPE_SET), CreatedAt: a.UpdatedAt,
		}).Error
	})
	if err != nil {
		return nil, err
	}
	h.svc.changes.Notify()
	h.svc.deps.Log.Info("alias set", "model", req.GetModel(), "alias", a.Name, "version", a.Version)
	return &registrypb.SetAliasResponse{Alias: &registrypb.Alias{
		Model: req.GetModel(), Alias: a.Name, Version: a.Version, UpdateTime: timestamppb.New(a.UpdatedAt),
	}}, nil
}

func (h *handler) DeleteAlias(ctx context.Context, req *registrypb.DeleteAliasRequest) (*registrypb.DeleteAliasResponse, error) {
	err := h.db(ctx).Transaction(func(tx *gorm.DB) error {
		m, err := findModel(tx, req.GetModel())
		if err != nil {
			return err
		}
		rev, err := bumpRevision(tx)
		if err != nil {
			return err
		}
		a, err := findAlias(tx, m, req.GetAlias())
		if err != nil {
			return err
		}
		if err := tx.Delete(&a).Error; err != nil {
			return fmt.Errorf("delete alias: %w", err)
		}
		return tx.Create(&aliasEventRow{
			Revision: rev, Model: m.Name, Alias: a.Name, Version: a.Version,
			Type: int32(registrypb.AliasEventType_ALIAS_EVENT_TYPE_DELETED),
		}).Error
	})
	if err != nil {
		return nil, err
	}
	h.svc.changes.Notify()
	h.svc.deps.Log.Info("alias deleted", "model", req.GetModel(), "alias", req.GetAlias())
	return &registrypb.DeleteAliasResponse{}, nil
}

// eventBatch bounds one read of the alias event log.
const eventBatch = 256

// WatchAliases sends the current aliases as CURRENT events, then SYNCED,
// then every change from the alias event log in revision order. The log is
// read whenever this process changes an alias and whenever Run's poll sees
// the revision move (another process changed one), so no change is missed
// and each arrives once. The stream ends when the client leaves or the
// service stops.
func (h *handler) WatchAliases(req *registrypb.WatchAliasesRequest, stream grpc.ServerStreamingServer[registrypb.WatchAliasesResponse]) error {
	ctx := stream.Context()
	if req.GetModel() != "" {
		if _, err := findModel(h.db(ctx), req.GetModel()); err != nil {
			return err
		}
	}
	// Subscribe before reading, so that a change committed after the
	// snapshot wakes this stream.
	wake := h.svc.changes.Wait()
	rev, current, err := h.snapshot(ctx, req.GetModel())
	if err != nil {
		return err
	}
	for _, a := range current {
		if err := stream.Send(&registrypb.WatchAliasesResponse{Type: registrypb.AliasEventType_ALIAS_EVENT_TYPE_CURRENT, Alias: a, Revision: rev}); err != nil {
			return err
		}
	}
	if err := stream.Send(&registrypb.WatchAliasesResponse{Type: registrypb.AliasEventType_ALIAS_EVENT_TYPE_SYNCED, Revision: rev}); err != nil {
		return err
	}
	for {
		events, err := h.eventsAfter(ctx, req.GetModel(), rev)
		if err != nil {
			return err
		}
		for _, e := range events {
			msg := &registrypb.WatchAliasesResponse{
				Type:     registrypb.AliasEventType(e.Type),
				Alias:    &registrypb.Alias{Model: e.Model, Alias: e.Alias, Version: e.Version},
				Revision: e.Revision,
			}
			if !e.CreatedAt.IsZero() {
				msg.Alias.UpdateTime = timestamppb.New(e.CreatedAt)
			}
			if err := stream.Send(msg); err != nil {
				return err
			}
			rev = e.Revision
		}
		if len(events) == eventBatch {
			continue // more are waiting
		}
		select {
		case <-wake:
			wake = h.svc.changes.Wait()
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-h.svc.stopping:
			return nil
		}
	}
}

// snapshot reads the alias revision and the aliases it describes in one
// consistent read: REPEATABLE READ on the servers (one snapshot for both
// queries); SQLite's transactions are serialised anyway.
func (h *handler) snapshot(ctx context.Context, model string) (int64, []*registrypb.Alias, error) {
	var opts []*sql.TxOptions
	if h.svc.deps.DB.Dialector.Name() != string(db.SQLite) {
		opts = append(opts, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	}
	var rev int64
	var out []*registrypb.Alias
	err := h.db(ctx).Transaction(func(tx *gorm.DB) error {
		var r aliasRevisionRow
		if err := tx.Take(&r, 1).Error; err != nil {
			return fmt.Errorf("read alias revision: %w", err)
		}
		rev = r.Revision
		var rows []struct {
			Model     string
			Name      string
			Version   int64
			UpdatedAt sql.NullTime
		}
		q := tx.Table("registry_aliases AS a").
			Select("m.name AS model, a.name AS name, a.version AS version, a.updated_at AS updated_at").
			Joins("JOIN registry_models AS m ON m.id = a.model_id").
			Order("m.name, a.name")
		if model != "" {
			q = q.Where("m.name = ?", model)
		}
		if err := q.Scan(&rows).Error; err != nil {
			return fmt.Errorf("read aliases: %w", err)
		}
		for _, r := range rows {
			a := &registrypb.Alias{Model: r.Model, Alias: r.Name, Version: r.Version}
			if r.UpdatedAt.Valid {
				a.UpdateTime = timestamppb.New(r.UpdatedAt.Time)
			}
			out = append(out, a)
		}
		return nil
	}, opts...)
	return rev, out, err
}

// eventsAfter returns the next alias events after revision rev. Every
// revision has exactly one event, so when the log's oldest event is beyond
// rev+1 the events in between were pruned (the watcher fell more than the
// retention behind) and the stream cannot go on without a gap: it ends with
// ABORTED, and the client watches again from a new snapshot.
func (h *handler) eventsAfter(ctx context.Context, model string, rev int64) ([]aliasEventRow, error) {
	var oldest int64
	if err := h.db(ctx).Model(&aliasEventRow{}).Select("COALESCE(MIN(revision), 0)").Scan(&oldest).Error; err != nil {
		return nil, fmt.Errorf("read oldest alias event: %w", err)
	}
	if oldest > rev+1 {
		return nil, status.Errorf(codes.Aborted,
			"alias events after revision %d were pruned (--registry.alias-event-retention); watch again to start from the current aliases", rev)
	}
	q := h.db(ctx).Where("revision > ?", rev).Order("revision").Limit(eventBatch)
	if model != "" {
		q = q.Where("model = ?", model)
	}
	var events []aliasEventRow
	if err := q.Find(&events).Error; err != nil {
		return nil, fmt.Errorf("read alias events: %w", err)
	}
	return events, nil
}
