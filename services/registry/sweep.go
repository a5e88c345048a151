package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/shoalml/shoal/internal/storage/blob"
)

// sweepEvery is how often Run looks for orphan artifact blobs; it also
// looks once at start, which is when a crash's leftovers are found.
const sweepEvery = 24 * time.Hour

// sweepArtifacts deletes artifact blobs that no version references and
// returns how many it deleted. An upload stores its blob inside the
// transaction that then inserts its rows, so a process that dies between
// the two leaves a blob nothing names and nothing else would remove.
//
// Each candidate goes through collectArtifact, which takes the artifact's
// row lock as uploads do and counts references under it: an upload of the
// same bytes in flight (in this process or another) holds that lock from
// before it writes the blob until it commits, so its blob is never taken.
// That is why, unlike the dataset's image sweep, this needs no grace
// period.
func (s *Service) sweepArtifacts(ctx context.Context) (int, error) {
	var shas []string
	err := s.deps.Blobs.List(ctx, artifactPrefix, func(info blob.Info) error {
		if sha := path.Base(info.Key); info.Key == artifactKey(sha) && isSHA256(sha) {
			shas = append(shas, sha)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list artifacts: %w", err)
	}
	deleted := 0
	for c := range slices.Chunk(shas, 500) {
		var used []string
		if err := s.deps.DB.WithContext(ctx).Model(&versionRow{}).Where("artifact_sha256 IN ?", c).
			Distinct("artifact_sha256").Pluck("artifact_sha256", &used).Error; err != nil {
			return deleted, fmt.Errorf("look up artifact references: %w", err)
		}
		for _, sha := range c {
			if slices.Contains(used, sha) {
				continue
			}
			gone, err := s.collectArtifact(ctx, sha)
			if err != nil {
				return deleted, fmt.Errorf("artifact %s: %w", sha, err)
			}
			if gone {
				deleted++
			}
		}
	}
	return deleted, nil
}

// isSHA256 reports a hex SHA-256, the only name Put gives an artifact.
func isSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size && s == strings.ToLower(s)
}

// artifactPrefix is the folder of every artifact key.
var artifactPrefix = artifactKey("")
