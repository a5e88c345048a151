package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/shoalml/shoal/internal/storage/db"
)

// The runtime models; the tables are created by migrations.go.

type datasetRow struct {
	ID          int64 `gorm:"primaryKey"`
	Name        string
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (datasetRow) TableName() string { return "dataset_datasets" }

type imageRow struct {
	ID        int64 `gorm:"primaryKey"`
	DatasetID int64
	Split     int16
	Label     string
	FileName  string
	SHA256    string `gorm:"column:sha256"`
	Width     int32
	Height    int32
	Format    string
	SizeBytes int64
	CreatedAt time.Time
}

func (imageRow) TableName() string { return "dataset_images" }

type snapshotRow struct {
	ID             int64 `gorm:"primaryKey"`
	DatasetID      int64
	Version        int64
	Description    string
	ImageCount     int64
	ManifestSHA256 string `gorm:"column:manifest_sha256"`
	CreatedAt      time.Time
}

func (snapshotRow) TableName() string { return "dataset_snapshots" }

type snapshotImageRow struct {
	SnapshotID int64 `gorm:"primaryKey;autoIncrement:false"`
	Pos        int64 `gorm:"primaryKey;autoIncrement:false"`
	ImageID    int64
}

func (snapshotImageRow) TableName() string { return "dataset_snapshot_images" }

type snapshotCountRow struct {
	ID         int64 `gorm:"primaryKey"`
	SnapshotID int64
	Split      int16
	Label      string
	Count      int64
}

func (snapshotCountRow) TableName() string { return "dataset_snapshot_counts" }

// Store errors the handler maps to codes.
var (
	errNotFound = errors.New("not found")
	errExists   = errors.New("already exists")
)

// store is the service's SQL state.
type store struct{ db *gorm.DB }

func (s store) createDataset(ctx context.Context, name, desc string) (*datasetRow, error) {
	now := time.Now().UTC()
	row := &datasetRow{Name: name, Description: desc, CreatedAt: now, UpdatedAt: now}
	if err := s.db.WithContext(ctx).Create(row).Error; err != nil {
		if db.IsUniqueViolation(err) {
			return nil, errExists
		}
		return nil, fmt.Errorf("create dataset %q: %w", name, err)
	}
	return row, nil
}

func (s store) dataset(ctx context.Context, name string) (*datasetRow, error) {
	var row datasetRow
	if err := s.db.WithContext(ctx).Where("name = ?", name).Take(&row).Error; err != nil {
		if db.IsNotFound(err) {
			return nil, errNotFound
		}
		return nil, fmt.Errorf("get dataset %q: %w", name, err)
	}
	return &row, nil
}

// listDatasets returns up to limit datasets named after `after`, by name.
func (s store) listDatasets(ctx context.Context, after string, limit int) ([]datasetRow, error) {
	var rows []datasetRow
	err := s.db.WithContext(ctx).Where("name > ?", after).Order("name").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list datasets: %w", err)
	}
	return rows, nil
}

// datasetSummary is what a Dataset message shows besides its row.
type datasetSummary struct {
	images, snapshots int64
	labels            []string
}

func (s store) summary(ctx context.Context, id int64) (datasetSummary, error) {
	var out datasetSummary
	q := s.db.WithContext(ctx)
	if err := q.Model(&imageRow{}).Where("dataset_id = ?", id).Count(&out.images).Error; err != nil {
		return out, fmt.Errorf("count images: %w", err)
	}
	if err := q.Model(&snapshotRow{}).Where("dataset_id = ?", id).Count(&out.snapshots).Error; err != nil {
		return out, fmt.Errorf("count snapshots: %w", err)
	}
	if err := q.Model(&imageRow{}).Where("dataset_id = ?", id).Distinct("label").Pluck("label", &out.labels).Error; err != nil {
		return out, fmt.Errorf("list labels: %w", err)
	}
	slices.Sort(out.labels) // Go's order, not the collation's
	return out, nil
}

// deleteDataset removes the dataset's rows and returns the blob keys
// (sha256) its images used that no image of another dataset uses.
func (s store) deleteDataset(ctx context.Context, id int64) (images int64, unreferenced []string, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var shas []string
		if err := tx.Model(&imageRow{}).Where("dataset_id = ?", id).Pluck("sha256", &shas).Error; err != nil {
			return err
		}
		snaps := tx.Model(&snapshotRow{}).Select("id").Where("dataset_id = ?", id)
		if err := tx.Where("snapshot_id IN (?)", snaps).Delete(&snapshotImageRow{}).Error; err != nil {
			return err
		}
		if err := tx.Where("snapshot_id IN (?)", snaps).Delete(&snapshotCountRow{}).Error; err != nil {
			return err
		}
		if err := tx.Where("dataset_id = ?", id).Delete(&snapshotRow{}).Error; err != nil {
			return err
		}
		res := tx.Where("dataset_id = ?", id).Delete(&imageRow{})
		if res.Error != nil {
			return res.Error
		}
		images = res.RowsAffected
		if err := tx.Delete(&datasetRow{ID: id}).Error; err != nil {
			return err
		}
		// Which of them another dataset still holds, in chunks so the IN
		// list stays within every server's parameter limit.
		still := map[string]bool{}
		for c := range slices.Chunk(shas, 500) {
			var used []string
			if err := tx.Model(&imageRow{}).Where("sha256 IN ?", c).Distinct("sha256").Pluck("sha256", &used).Error; err != nil {
				return err
			}
			for _, u := range used {
				still[u] = true
			}
		}
		for _, sha := range shas {
			if !still[sha] {
				unreferenced = append(unreferenced, sha)
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("delete dataset %d: %w", id, err)
	}
	return images, unreferenced, nil
}

// existing returns the dataset's rows among shas, by sha256.
func (s store) existing(ctx context.Context, datasetID int64, shas []string) (map[string]imageRow, error) {
	out := make(map[string]imageRow, len(shas))
	for c := range slices.Chunk(shas, 500) {
		var rows []imageRow
		err := s.db.WithContext(ctx).Select("id", "split", "label", "sha256").
			Where("dataset_id = ? AND sha256 IN ?", datasetID, c).Find(&rows).Error
		if err != nil {
			return nil, fmt.Errorf("look up images: %w", err)
		}
		for _, r := range rows {
			out[r.SHA256] = r
		}
	}
	return out, nil
}

// insertImages inserts rows in one transaction and bumps the dataset's
// update time. Rows another import inserted meanwhile are skipped (the
// unique index on dataset and sha256 decides); it returns how many were new.
func (s store) insertImages(ctx context.Context, datasetID int64, rows []imageRow) (int64, error) {
	var added int64
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 200)
		if res.Error != nil {
			return res.Error
		}
		added = res.RowsAffected
		return tx.Model(&datasetRow{}).Where("id = ?", datasetID).Update("updated_at", time.Now().UTC()).Error
	})
	if err != nil {
		return 0, fmt.Errorf("insert %d images: %w", len(rows), err)
	}
	return added, nil
}

// imageFilter selects images of a dataset, or of one of its snapshots.
type imageFilter struct {
	datasetID  int64
	snapshotID int64 // 0 for the current membership
	split      int16 // 0 for all
	label      string
}

func (s store) filtered(ctx context.Context, f imageFilter) *gorm.DB {
	q := s.db.WithContext(ctx).Model(&imageRow{}).Where("dataset_images.dataset_id = ?", f.datasetID)
	if f.snapshotID != 0 {
		q = q.Where("dataset_images.id IN (?)",
			s.db.Model(&snapshotImageRow{}).Select("image_id").Where("snapshot_id = ?", f.snapshotID))
	}
	if f.split != 0 {
		q = q.Where("dataset_images.split = ?", f.split)
	}
	if f.label != "" {
		q = q.Where("dataset_images.label = ?", f.label)
	}
	return q
}

func (s store) listImages(ctx context.Context, f imageFilter, afterID int64, limit int) ([]imageRow, int64, error) {
	var total int64
	if err := s.filtered(ctx, f).Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count images: %w", err)
	}
	var rows []imageRow
	if err := s.filtered(ctx, f).Where("dataset_images.id > ?", afterID).Order("dataset_images.id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, 0, fmt.Errorf("list images: %w", err)
	}
	return rows, total, nil
}

func (s store) image(ctx context.Context, datasetID, id int64) (*imageRow, error) {
	var row imageRow
	if err := s.db.WithContext(ctx).Where("dataset_id = ? AND id = ?", datasetID, id).Take(&row).Error; err != nil {
		if db.IsNotFound(err) {
			return nil, errNotFound
		}
		return nil, fmt.Errorf("get image %d: %w", id, err)
	}
	return &row, nil
}

// labelCount is one split × label count.
type labelCount struct {
	Split int16
	Label string
	Count int64
}

// sizeCount is how many images have one width and height.
type sizeCount struct {
	Width, Height int32
	Count         int64
	Bytes         int64
}

func (s store) stats(ctx context.Context, f imageFilter) ([]labelCount, []sizeCount, error) {
	var counts []labelCount
	if err := s.filtered(ctx, f).Select("split, label, COUNT(*) AS count").Group("split, label").Scan(&counts).Error; err != nil {
		return nil, nil, fmt.Errorf("count labels: %w", err)
	}
	sortCounts(counts)
	var sizes []sizeCount
	if err := s.filtered(ctx, f).Select("width, height, COUNT(*) AS count, SUM(size_bytes) AS bytes").Group("width, height").Scan(&sizes).Error; err != nil {
		return nil, nil, fmt.Errorf("count sizes: %w", err)
	}
	return counts, sizes, nil
}

func sortCounts(c []labelCount) {
	slices.SortFunc(c, func(a, b labelCount) int {
		if a.Split != b.Split {
			return int(a.Split) - int(b.Split)
		}
		return strings.Compare(a.Label, b.Label)
	})
}

// manifestEntry is one image of a snapshot's manifest.
type manifestEntry struct {
	ID     int64
	Split  int16
	Label  string
	SHA256 string `gorm:"column:sha256"`
}

// createSnapshot freezes the dataset's membership as the next version. The
// manifest is ordered by (split, label, sha256) in Go, not by the database
// collation, so the hash and the read order are the same on every driver.
// createSnapshot freezes the dataset's membership as a new snapshot. With
// reuse, it returns the newest snapshot instead when its manifest is the
// membership's (reused true, counts nil).
func (s store) createSnapshot(ctx context.Context, datasetID int64, desc string, reuse bool) (snap *snapshotRow, counts []labelCount, reused bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var entries []manifestEntry
		if err := tx.Model(&imageRow{}).Select("id, split, label, sha256").Where("dataset_id = ?", datasetID).Scan(&entries).Error; err != nil {
			return err
		}
		slices.SortFunc(entries, func(a, b manifestEntry) int {
			if a.Split != b.Split {
				return int(a.Split) - int(b.Split)
			}
			if c := strings.Compare(a.Label, b.Label); c != 0 {
				return c
			}
			return strings.Compare(a.SHA256, b.SHA256)
		})
		h := sha256.New()
		byKey := map[labelCount]int64{}
		for _, e := range entries {
			fmt.Fprintf(h, "%d\t%s\t%s\n", e.Split, e.Label, e.SHA256)
			byKey[labelCount{Split: e.Split, Label: e.Label}]++
		}
		manifest := hex.EncodeToString(h.Sum(nil))
		var latest snapshotRow
		err := tx.Where("dataset_id = ?", datasetID).Order("version DESC").Limit(1).Take(&latest).Error
		switch {
		case db.IsNotFound(err):
		case err != nil:
			return err
		case reuse && latest.ManifestSHA256 == manifest:
			snap, reused = &latest, true
			return nil
		}
		snap = &snapshotRow{
			DatasetID: datasetID, Version: latest.Version + 1, Description: desc, ImageCount: int64(len(entries)),
			ManifestSHA256: manifest, CreatedAt: time.Now().UTC(),
		}
		if err := tx.Create(snap).Error; err != nil {
			return err
		}
		members := make([]snapshotImageRow, len(entries))
		for i, e := range entries {
			members[i] = snapshotImageRow{SnapshotID: snap.ID, Pos: int64(i), ImageID: e.ID}
		}
		if len(members) > 0 {
			if err := tx.CreateInBatches(members, 1000).Error; err != nil {
				return err
			}
		}
		rows := make([]snapshotCountRow, 0, len(byKey))
		for k, n := range byKey {
			counts = append(counts, labelCount{Split: k.Split, Label: k.Label, Count: n})
		}
		sortCounts(counts)
		for _, c := range counts {
			rows = append(rows, snapshotCountRow{SnapshotID: snap.ID, Split: c.Split, Label: c.Label, Count: c.Count})
		}
		if len(rows) > 0 {
			return tx.CreateInBatches(rows, 500).Error
		}
		return nil
	})
	if err != nil {
		if db.IsUniqueViolation(err) {
			// Another snapshot of the same dataset took this version number.
			return nil, nil, false, fmt.Errorf("%w: snapshot version taken concurrently", errExists)
		}
		return nil, nil, false, fmt.Errorf("create snapshot: %w", err)
	}
	if reused {
		counts = nil
	}
	return snap, counts, reused, nil
}

// snapshot returns version (0 for the latest) of the dataset.
func (s store) snapshot(ctx context.Context, datasetID, version int64) (*snapshotRow, error) {
	q := s.db.WithContext(ctx).Where("dataset_id = ?", datasetID)
	if version > 0 {
		q = q.Where("version = ?", version)
	} else {
		q = q.Order("version DESC")
	}
	var row snapshotRow
	if err := q.Take(&row).Error; err != nil {
		if db.IsNotFound(err) {
			return nil, errNotFound
		}
		return nil, fmt.Errorf("get snapshot: %w", err)
	}
	return &row, nil
}

func (s store) snapshotCounts(ctx context.Context, snapshotID int64) ([]labelCount, error) {
	var rows []snapshotCountRow
	if err := s.db.WithContext(ctx).Where("snapshot_id = ?", snapshotID).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("snapshot counts: %w", err)
	}
	out := make([]labelCount, len(rows))
	for i, r := range rows {
		out[i] = labelCount{Split: r.Split, Label: r.Label, Count: r.Count}
	}
	sortCounts(out)
	return out, nil
}

// listSnapshots returns up to limit snapshots older than `before` (0 for
// the newest), newest first.
func (s store) listSnapshots(ctx context.Context, datasetID, before int64, limit int) ([]snapshotRow, error) {
	q := s.db.WithContext(ctx).Where("dataset_id = ?", datasetID)
	if before > 0 {
		q = q.Where("version < ?", before)
	}
	var rows []snapshotRow
	if err := q.Order("version DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	return rows, nil
}

// snapshotPage returns up to limit images of a snapshot from manifest
// position `from` on, optionally of one split, with their positions.
func (s store) snapshotPage(ctx context.Context, snapshotID int64, split int16, from int64, limit int) ([]imageRow, []int64, error) {
	q := s.db.WithContext(ctx).Model(&snapshotImageRow{}).Where("snapshot_id = ? AND pos >= ?", snapshotID, from)
	if split != 0 {
		q = q.Where("image_id IN (?)", s.db.Model(&imageRow{}).Select("id").Where("split = ?", split))
	}
	var members []snapshotImageRow
	if err := q.Order("pos").Limit(limit).Find(&members).Error; err != nil {
		return nil, nil, fmt.Errorf("read snapshot: %w", err)
	}
	ids := make([]int64, len(members))
	for i, m := range members {
		ids[i] = m.ImageID
	}
	var rows []imageRow
	if len(ids) > 0 {
		if err := s.db.WithContext(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
			return nil, nil, fmt.Errorf("read snapshot images: %w", err)
		}
	}
	byID := make(map[int64]imageRow, len(rows))
	for _, r := range rows {
		byID[r.ID] = r
	}
	imgs := make([]imageRow, 0, len(members))
	pos := make([]int64, 0, len(members))
	for _, m := range members {
		r, ok := byID[m.ImageID]
		if !ok {
			return nil, nil, fmt.Errorf("read snapshot: image %d of snapshot %d is missing", m.ImageID, snapshotID)
		}
		imgs = append(imgs, r)
		pos = append(pos, m.Pos)
	}
	return imgs, pos, nil
}

// referenced reports which of shas some image row (of any dataset) uses.
func (s store) referenced(ctx context.Context, shas []string) (map[string]bool, error) {
	out := map[string]bool{}
	for c := range slices.Chunk(shas, 500) {
		var used []string
		if err := s.db.WithContext(ctx).Model(&imageRow{}).Where("sha256 IN ?", c).Distinct("sha256").Pluck("sha256", &used).Error; err != nil {
			return nil, fmt.Errorf("look up blob references: %w", err)
		}
		for _, u := range used {
			out[u] = true
		}
	}
	return out, nil
}
