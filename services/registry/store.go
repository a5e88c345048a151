package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
)

// storedJSON reads the messages stored as JSON. Unknown fields are skipped:
// rows written by a newer release (a field added since) stay readable by
// this one, as the schema itself does (db.Migrate runs an older release on a
// newer schema).
var storedJSON = protojson.UnmarshalOptions{DiscardUnknown: true}

// The runtime rows are the migrations' types until a migration changes a
// table; then the new shape gets its own frozen type and the alias moves.
type (
	modelRow         = v1Model
	versionRow       = v1Version
	artifactRow      = v1Artifact
	aliasRow         = v1Alias
	aliasEventRow    = v1AliasEvent
	aliasRevisionRow = v1AliasRevision
	replicaRow       = v1ServingReplica
	servingRevRow    = v1ServingRevision
)

// artifactKey is where an artifact's bytes live: content-addressed, so an
// ONNX file uploaded twice is stored once. Versions hand it out as
// Artifact.blob_key; no other service builds it.
func artifactKey(sha string) string { return "registry/artifacts/sha256/" + sha }

func modelNotFound(name string) error {
	return status.Errorf(codes.NotFound, "model %q not found", name)
}

func findModel(tx *gorm.DB, name string) (modelRow, error) {
	var m modelRow
	err := tx.Where("name = ?", name).Take(&m).Error
	switch {
	case db.IsNotFound(err):
		return m, modelNotFound(name)
	case err != nil:
		return m, fmt.Errorf("find model %q: %w", name, err)
	}
	return m, nil
}

// findVersion finds version number of m; lock takes the row for update, so
// that deleting it and pointing an alias at it cannot interleave.
func findVersion(tx *gorm.DB, m modelRow, number int64, lock bool) (versionRow, error) {
	var v versionRow
	q := tx.Where("model_id = ? AND number = ?", m.ID, number)
	if lock {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	err := q.Take(&v).Error
	switch {
	case db.IsNotFound(err):
		return v, status.Errorf(codes.NotFound, "model %q has no version %d", m.Name, number)
	case err != nil:
		return v, fmt.Errorf("find version %s/%d: %w", m.Name, number, err)
	}
	return v, nil
}

func findAlias(tx *gorm.DB, m modelRow, alias string) (aliasRow, error) {
	var a aliasRow
	err := tx.Where("model_id = ? AND name = ?", m.ID, alias).Take(&a).Error
	switch {
	case db.IsNotFound(err):
		return a, status.Errorf(codes.NotFound, "model %q has no alias %q", m.Name, alias)
	case err != nil:
		return a, fmt.Errorf("find alias %s@%s: %w", m.Name, alias, err)
	}
	return a, nil
}

// aliasesByVersion maps each version number of the model to its aliases,
// sorted.
func aliasesByVersion(tx *gorm.DB, modelID int64) (map[int64][]string, error) {
	var rows []aliasRow
	if err := tx.Where("model_id = ?", modelID).Order("name").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list aliases: %w", err)
	}
	out := map[int64][]string{}
	for _, a := range rows {
		out[a.Version] = append(out[a.Version], a.Name)
	}
	return out, nil
}

func latestVersion(tx *gorm.DB, modelID int64) (int64, error) {
	var n int64
	if err := tx.Model(&versionRow{}).Where("model_id = ?", modelID).Select("COALESCE(MAX(number), 0)").Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("latest version: %w", err)
	}
	return n, nil
}

// modelProto builds the API's Model with its aliases and latest version.
func modelProto(tx *gorm.DB, m modelRow) (*registrypb.Model, error) {
	labels, err := decodeLabels(m.Labels)
	if err != nil {
		return nil, err
	}
	latest, err := latestVersion(tx, m.ID)
	if err != nil {
		return nil, err
	}
	var rows []aliasRow
	if err := tx.Where("model_id = ?", m.ID).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list aliases: %w", err)
	}
	aliases := map[string]int64{}
	for _, a := range rows {
		aliases[a.Name] = a.Version
	}
	return &registrypb.Model{
		Name: m.Name, Description: m.Description, Labels: labels, LatestVersion: latest,
		Aliases: aliases, CreateTime: timestamppb.New(m.CreatedAt),
	}, nil
}

func decodeLabels(s string) ([]string, error) {
	var labels []string
	if err := json.Unmarshal([]byte(s), &labels); err != nil {
		return nil, fmt.Errorf("stored labels: %w", err)
	}
	return labels, nil
}

func encodeJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("registry: marshal %T: %v", v, err)) // only strings and maps of strings reach here
	}
	return string(b)
}

func encodeProto(m proto.Message) string {
	b, err := protojson.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("registry: marshal %T: %v", m, err)) // protojson fails only on invalid UTF-8, which gRPC rejects first
	}
	if len(b) == 0 {
		return "{}"
	}
	return string(b)
}

// versionProto builds the API's Version from its row.
func versionProto(model string, v versionRow, aliases []string) (*registrypb.Version, error) {
	labels, err := decodeLabels(v.Labels)
	if err != nil {
		return nil, err
	}
	out := &registrypb.Version{
		Model: model, Version: v.Number, Labels: labels,
		Artifact: &registrypb.Artifact{Sha256: v.ArtifactSHA256, SizeBytes: v.ArtifactSize, Format: "onnx",
			BlobKey: artifactKey(v.ArtifactSHA256)},
		InputSpec:    &registrypb.InputSpec{},
		Metrics:      &registrypb.Metrics{},
		Lineage:      &registrypb.Lineage{},
		Architecture: v.Architecture, Aliases: slices.Clone(aliases), Creator: v.Creator,
		Description: v.Description, CreateTime: timestamppb.New(v.CreatedAt),
	}
	for _, f := range []struct {
		s string
		m proto.Message
	}{{v.InputSpec, out.InputSpec}, {v.Metrics, out.Metrics}, {v.Lineage, out.Lineage}} {
		if err := storedJSON.Unmarshal([]byte(f.s), f.m); err != nil {
			return nil, fmt.Errorf("stored %T of %s/%d: %w", f.m, model, v.Number, err)
		}
	}
	if err := json.Unmarshal([]byte(v.HyperParameters), &out.HyperParameters); err != nil {
		return nil, fmt.Errorf("stored hyper-parameters of %s/%d: %w", model, v.Number, err)
	}
	return out, nil
}

// newVersion is a checked upload waiting to be stored.
type newVersion struct {
	spec   *registrypb.VersionSpec // as sent, validated
	labels []string
	input  *registrypb.InputSpec // normalised, names resolved
	sha    string
	size   int64
	path   string // the artifact, in a temporary file
}

// createVersion stores nv: the blob (unless the same bytes are stored
// already) and the rows, numbering the version after the model's last. A
// failure leaves nothing behind.
func (s *Service) createVersion(ctx context.Context, nv newVersion) (*registrypb.Version, error) {
	var out *registrypb.Version
	var err error
	// Two first uploads of a new model race to create it: the loser's
	// insert fails on the unique name (or, on MySQL, is picked as a
	// deadlock victim) and the retry finds the model.
	for attempt := 0; attempt < 5; attempt++ {
		out, err = s.createVersionTx(ctx, nv)
		if err == nil || !(db.IsUniqueViolation(err) || db.IsRetryable(err)) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		// The transaction may have stored the blob before failing.
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, gerr := s.collectArtifact(gctx, nv.sha); gerr != nil {
			s.deps.Log.Warn("artifact left behind after a failed upload", "sha256", nv.sha, "err", gerr)
		}
		return nil, err
	}
	return out, nil
}

func (s *Service) createVersionTx(ctx context.Context, nv newVersion) (*registrypb.Version, error) {
	var out *registrypb.Version
	err := s.deps.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		m, err := findModel(tx, nv.spec.GetModel())
		if status.Code(err) == codes.NotFound {
			m = modelRow{Name: nv.spec.GetModel(), Labels: encodeJSON(nv.labels), Description: ""}
			if err = tx.Create(&m).Error; err != nil {
				return fmt.Errorf("create model %q: %w", m.Name, err)
			}
		} else if err != nil {
			return err
		}
		labels, err := decodeLabels(m.Labels)
		if err != nil {
			return err
		}
		if !slices.Equal(labels, nv.labels) {
			return labelsDiffer(m.Name, labels, nv.labels)
		}

		// Lock the artifact's row while its blob is written, so that a
		// concurrent deletion of the last version using the same bytes
		// cannot remove the blob under this one (see collectArtifact).
		if err := lockArtifact(tx, nv.sha, nv.size); err != nil {
			return err
		}
		if err := s.putArtifact(ctx, nv); err != nil {
			return err
		}

		// The counter row is locked until commit, so concurrent uploads
		// of one model get consecutive numbers; deleted numbers are never
		// reused.
		if err := tx.Model(&modelRow{}).Where("id = ?", m.ID).
			Update("version_seq", gorm.Expr("version_seq + 1")).Error; err != nil {
			return fmt.Errorf("number version: %w", err)
		}
		if err := tx.Select("version_seq").Where("id = ?", m.ID).Take(&m).Error; err != nil {
			return fmt.Errorf("number version: %w", err)
		}
		hp := nv.spec.GetHyperParameters()
		if hp == nil {
			hp = map[string]string{}
		}
		metrics := nv.spec.GetMetrics()
		if metrics == nil {
			metrics = &registrypb.Metrics{}
		}
		lineage := nv.spec.GetLineage()
		if lineage == nil {
			lineage = &registrypb.Lineage{}
		}
		v := versionRow{
			ModelID: m.ID, Number: m.VersionSeq, Labels: encodeJSON(nv.labels),
			InputSpec: encodeProto(nv.input), Metrics: encodeProto(metrics), TestAccuracy: metrics.GetTestAccuracy(),
			HyperParameters: encodeJSON(hp), Lineage: encodeProto(lineage),
			Architecture: nv.spec.GetArchitecture(), Creator: nv.spec.GetCreator(), Description: nv.spec.GetDescription(),
			ArtifactSHA256: nv.sha, ArtifactSize: nv.size,
		}
		if err := tx.Create(&v).Error; err != nil {
			return fmt.Errorf("create version %s/%d: %w", m.Name, v.Number, err)
		}
		out, err = versionProto(m.Name, v, nil)
		return err
	})
	return out, err
}

func labelsDiffer(model string, have, got []string) error {
	return status.Errorf(codes.InvalidArgument, "labels [%s] differ from model %q's labels [%s]: a model's versions share its labels in order; use a new model name for other classes",
		strings.Join(got, ", "), model, strings.Join(have, ", "))
}

// lockArtifact creates the artifact's row if missing and locks it until the
// transaction ends. (SQLite has no row locks; its transactions are
// serialised as a whole.)
//
// The insert does nothing when the row exists, even while another
// transaction holds it to delete it; the lock then waits for that one and
// finds the row gone, so insert and lock are tried again (a deleter only
// removes an unreferenced row once, so this ends).
func lockArtifact(tx *gorm.DB, sha string, size int64) error {
	for attempt := 0; ; attempt++ {
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&artifactRow{SHA256: sha, SizeBytes: size}).Error; err != nil {
			return fmt.Errorf("artifact row: %w", err)
		}
		var a artifactRow
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("sha256 = ?", sha).Take(&a).Error
		if err == nil {
			return nil
		}
		if !db.IsNotFound(err) || attempt == 4 {
			return fmt.Errorf("lock artifact row: %w", err)
		}
	}
}

// putArtifact writes the upload's bytes to the blob store unless they are
// there already.
func (s *Service) putArtifact(ctx context.Context, nv newVersion) error {
	key := artifactKey(nv.sha)
	if info, err := s.deps.Blobs.Stat(ctx, key); err == nil && info.Size == nv.size {
		return nil
	} else if err != nil && !errors.Is(err, blob.ErrNotFound) {
		return fmt.Errorf("stat artifact: %w", err)
	}
	f, err := os.Open(nv.path)
	if err != nil {
		return fmt.Errorf("reopen upload: %w", err)
	}
	defer f.Close()
	if err := s.deps.Blobs.Put(ctx, key, f, nv.size); err != nil {
		return fmt.Errorf("store artifact: %w", err)
	}
	return nil
}

// collectArtifact removes the blob and row of an artifact that no version
// references, and reports whether it did. It holds the artifact's row lock
// meanwhile, as uploads do, so an upload of the same bytes either finishes
// first (and the blob stays) or starts after (and writes the blob again).
func (s *Service) collectArtifact(ctx context.Context, sha string) (deleted bool, err error) {
	err = s.deps.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := lockArtifact(tx, sha, 0); err != nil {
			return err
		}
		var refs int64
		if err := tx.Model(&versionRow{}).Where("artifact_sha256 = ?", sha).Count(&refs).Error; err != nil {
			return fmt.Errorf("count artifact references: %w", err)
		}
		if refs > 0 {
			return nil
		}
		if err := s.deps.Blobs.Delete(ctx, artifactKey(sha)); err != nil {
			return fmt.Errorf("delete artifact blob: %w", err)
		}
		if err := tx.Where("sha256 = ?", sha).Delete(&artifactRow{}).Error; err != nil {
			return fmt.Errorf("delete artifact row: %w", err)
		}
		deleted = true
		return nil
	})
	return deleted && err == nil, err
}

// openArtifact opens a version's stored bytes.
func (s *Service) openArtifact(ctx context.Context, sha string) (io.ReadCloser, error) {
	rc, err := s.deps.Blobs.Get(ctx, artifactKey(sha))
	if err != nil {
		return nil, fmt.Errorf("open artifact %s: %w", sha, err)
	}
	return rc, nil
}

// bumpRevision increments the alias revision and returns it. The row stays
// locked until the transaction ends, which orders alias changes (see
// v1AliasRevision).
func bumpRevision(tx *gorm.DB) (int64, error) {
	if err := tx.Model(&aliasRevisionRow{}).Where("id = 1").Update("revision", gorm.Expr("revision + 1")).Error; err != nil {
		return 0, fmt.Errorf("bump alias revision: %w", err)
	}
	var r aliasRevisionRow
	if err := tx.Take(&r, 1).Error; err != nil {
		return 0, fmt.Errorf("read alias revision: %w", err)
	}
	return r.Revision, nil
}

// Page tokens are opaque to clients: base64 of the last key returned.
func encodeToken(kind, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + key))
}

func decodeToken(kind, token string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	k, key, ok := strings.Cut(string(b), ":")
	if err != nil || !ok || k != kind {
		return "", status.Error(codes.InvalidArgument, "pageToken is not one this list returned")
	}
	return key, nil
}

func decodeNumberToken(token string) (int64, error) {
	key, err := decodeToken("v", token)
	if err != nil {
		return 0, err
	}
	n, perr := strconv.ParseInt(key, 10, 64)
	if perr != nil {
		return 0, status.Error(codes.InvalidArgument, "pageToken is not one this list returned")
	}
	return n, nil
}

// pageSize applies the documented default and bound (a negative size
// breaks the contract's rule and never arrives).
func pageSize(n int32) int {
	switch {
	case n == 0:
		return 50
	case n > 1000:
		return 1000
	}
	return int(n)
}
