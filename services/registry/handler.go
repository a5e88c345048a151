package registry

import (
	"context"
	"fmt"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"gorm.io/gorm"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/storage/db"
)

// handler is the service's RPC surface.
type handler struct {
	registrypb.UnimplementedRegistryServiceServer
	svc *Service
}

var _ registrypb.RegistryServiceServer = (*handler)(nil)

func (h *handler) db(ctx context.Context) *gorm.DB { return h.svc.deps.DB.WithContext(ctx) }

func (h *handler) CreateModel(ctx context.Context, req *registrypb.CreateModelRequest) (*registrypb.CreateModelResponse, error) {
	if err := checkLabels(req.GetLabels()); err != nil {
		return nil, err
	}
	m := modelRow{Name: req.GetName(), Description: req.GetDescription(), Labels: encodeJSON(req.GetLabels())}
	if err := h.db(ctx).Create(&m).Error; err != nil {
		if db.IsUniqueViolation(err) {
			return nil, status.Errorf(codes.AlreadyExists, "model %q already exists", m.Name)
		}
		return nil, fmt.Errorf("create model: %w", err)
	}
	pm, err := modelProto(h.db(ctx), m)
	if err != nil {
		return nil, err
	}
	return &registrypb.CreateModelResponse{Model: pm}, nil
}

func (h *handler) GetModel(ctx context.Context, req *registrypb.GetModelRequest) (*registrypb.GetModelResponse, error) {
	m, err := findModel(h.db(ctx), req.GetName())
	if err != nil {
		return nil, err
	}
	pm, err := modelProto(h.db(ctx), m)
	if err != nil {
		return nil, err
	}
	return &registrypb.GetModelResponse{Model: pm}, nil
}

func (h *handler) ListModels(ctx context.Context, req *registrypb.ListModelsRequest) (*registrypb.ListModelsResponse, error) {
	size := pageSize(req.GetPageSize())
	q := h.db(ctx).Order("name").Limit(size + 1)
	if req.GetPageToken() != "" {
		after, err := decodeToken("m", req.GetPageToken())
		if err != nil {
			return nil, err
		}
		q = q.Where("name > ?", after)
	}
	var rows []modelRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	resp := &registrypb.ListModelsResponse{}
	if len(rows) > size {
		rows = rows[:size]
		resp.NextPageToken = encodeToken("m", rows[size-1].Name)
	}
	for _, m := range rows {
		pm, err := modelProto(h.db(ctx), m)
		if err != nil {
			return nil, err
		}
		resp.Models = append(resp.Models, pm)
	}
	return resp, nil
}

func (h *handler) DeleteModel(ctx context.Context, req *registrypb.DeleteModelRequest) (*registrypb.DeleteModelResponse, error) {
	err := h.db(ctx).Transaction(func(tx *gorm.DB) error {
		m, err := findModel(tx, req.GetName())
		if err != nil {
			return err
		}
		// Locking the model row orders this against uploads, which
		// update it to number their version.
		if err := tx.Model(&modelRow{}).Where("id = ?", m.ID).Update("version_seq", gorm.Expr("version_seq")).Error; err != nil {
			return fmt.Errorf("lock model: %w", err)
		}
		var n int64
		if err := tx.Model(&versionRow{}).Where("model_id = ?", m.ID).Count(&n).Error; err != nil {
			return fmt.Errorf("count versions: %w", err)
		}
		if n > 0 {
			return status.Errorf(codes.FailedPrecondition, "model %q still has %d version(s): delete them first", m.Name, n)
		}
		if err := tx.Delete(&m).Error; err != nil {
			return fmt.Errorf("delete model: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &registrypb.DeleteModelResponse{}, nil
}

// resolveVersion finds a version by alias, or by number when alias is empty.
func resolveVersion(tx *gorm.DB, model, alias string, number int64) (modelRow, versionRow, error) {
	if alias == "" {
		if err := checkVersionNumber(number); err != nil {
			return modelRow{}, versionRow{}, err
		}
	}
	m, err := findModel(tx, model)
	if err != nil {
		return m, versionRow{}, err
	}
	if alias != "" {
		a, err := findAlias(tx, m, alias)
		if err != nil {
			return m, versionRow{}, err
		}
		number = a.Version
	}
	v, err := findVersion(tx, m, number, false)
	return m, v, err
}

func (h *handler) getVersion(ctx context.Context, model, alias string, number int64) (*registrypb.Version, error) {
	tx := h.db(ctx)
	m, v, err := resolveVersion(tx, model, alias, number)
	if err != nil {
		return nil, err
	}
	aliases, err := aliasesByVersion(tx, m.ID)
	if err != nil {
		return nil, err
	}
	return versionProto(m.Name, v, aliases[v.Number])
}

func (h *handler) GetVersion(ctx context.Context, req *registrypb.GetVersionRequest) (*registrypb.GetVersionResponse, error) {
	v, err := h.getVersion(ctx, req.GetModel(), req.GetAlias(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &registrypb.GetVersionResponse{Version: v}, nil
}

func (h *handler) ListVersions(ctx context.Context, req *registrypb.ListVersionsRequest) (*registrypb.ListVersionsResponse, error) {
	size := pageSize(req.GetPageSize())
	tx := h.db(ctx)
	m, err := findModel(tx, req.GetModel())
	if err != nil {
		return nil, err
	}
	order, cmp := "number", ">"
	if req.GetDescending() {
		order, cmp = "number DESC", "<"
	}
	q := tx.Where("model_id = ?", m.ID).Order(order).Limit(size + 1)
	if req.GetPageToken() != "" {
		after, err := decodeNumberToken(req.GetPageToken())
		if err != nil {
			return nil, err
		}
		q = q.Where("number "+cmp+" ?", after)
	}
	if req.GetMinTestAccuracy() != 0 {
		q = q.Where("test_accuracy >= ?", req.GetMinTestAccuracy())
	}
	if req.GetAlias() != "" {
		q = q.Where("number IN (?)", tx.Model(&aliasRow{}).Select("version").Where("model_id = ? AND name = ?", m.ID, req.GetAlias()))
	}
	var rows []versionRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	resp := &registrypb.ListVersionsResponse{}
	if len(rows) > size {
		rows = rows[:size]
		resp.NextPageToken = encodeToken("v", strconv.FormatInt(rows[size-1].Number, 10))
	}
	aliases, err := aliasesByVersion(tx, m.ID)
	if err != nil {
		return nil, err
	}
	for _, v := range rows {
		pv, err := versionProto(m.Name, v, aliases[v.Number])
		if err != nil {
			return nil, err
		}
		resp.Versions = append(resp.Versions, pv)
	}
	return resp, nil
}

func (h *handler) DeleteVersion(ctx context.Context, req *registrypb.DeleteVersionRequest) (*registrypb.DeleteVersionResponse, error) {
	var sha string
	err := h.db(ctx).Transaction(func(tx *gorm.DB) error {
		m, err := findModel(tx, req.GetModel())
		if err != nil {
			return err
		}
		v, err := findVersion(tx, m, req.GetVersion(), true)
		if err != nil {
			return err
		}
		aliases, err := aliasesByVersion(tx, m.ID)
		if err != nil {
			return err
		}
		if as := aliases[v.Number]; len(as) > 0 {
			return status.Errorf(codes.FailedPrecondition, "version %d of model %q is aliased as %q: move or delete the alias first", v.Number, m.Name, as)
		}
		if err := tx.Delete(&v).Error; err != nil {
			return fmt.Errorf("delete version: %w", err)
		}
		sha = v.ArtifactSHA256
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, err := h.svc.collectArtifact(ctx, sha); err != nil {
		return nil, fmt.Errorf("version deleted, but its artifact was not: %w", err)
	}
	return &registrypb.DeleteVersionResponse{}, nil
}

func (h *handler) CompareVersions(ctx context.Context, req *registrypb.CompareVersionsRequest) (*registrypb.CompareVersionsResponse, error) {
	a, err := h.getVersion(ctx, req.GetModel(), "", req.GetA())
	if err != nil {
		return nil, err
	}
	b, err := h.getVersion(ctx, req.GetModel(), "", req.GetB())
	if err != nil {
		return nil, err
	}
	return &registrypb.CompareVersionsResponse{A: a, B: b, Deltas: compareMetrics(a.GetMetrics(), b.GetMetrics())}, nil
}

// compareMetrics lists the headline metrics, then each class's F1 in label
// order (classes missing from one side count as 0).
func compareMetrics(a, b *registrypb.Metrics) []*registrypb.MetricDelta {
	delta := func(name string, x, y float64) *registrypb.MetricDelta {
		return &registrypb.MetricDelta{Name: name, A: x, B: y, Delta: y - x}
	}
	out := []*registrypb.MetricDelta{
		delta("val_accuracy", a.GetValAccuracy(), b.GetValAccuracy()),
		delta("val_loss", a.GetValLoss(), b.GetValLoss()),
		delta("test_accuracy", a.GetTestAccuracy(), b.GetTestAccuracy()),
		delta("test_loss", a.GetTestLoss(), b.GetTestLoss()),
	}
	f1 := func(m *registrypb.Metrics) map[string]float64 {
		out := map[string]float64{}
		for _, c := range m.GetPerClass() {
			out[c.GetLabel()] = c.GetF1()
		}
		return out
	}
	fa, fb := f1(a), f1(b)
	var labels []string
	seen := map[string]bool{}
	for _, m := range []*registrypb.Metrics{a, b} {
		for _, c := range m.GetPerClass() {
			if !seen[c.GetLabel()] {
				seen[c.GetLabel()] = true
				labels = append(labels, c.GetLabel())
			}
		}
	}
	for _, l := range labels {
		out = append(out, delta("f1/"+l, fa[l], fb[l]))
	}
	return out
}
