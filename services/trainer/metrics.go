package trainer

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
)

// metrics are the service's Prometheus series.
type metrics struct {
	// finished counts the jobs whose end this process recorded, by state.
	finished *prometheus.CounterVec
	// images counts the training images this process's jobs trained on
	// (every epoch's, augmented or not): its rate is the trainers'
	// throughput.
	images prometheus.Counter
	// progress is each job this process runs: the fraction of its
	// training steps done, deleted when the job leaves the process.
	progress *prometheus.GaugeVec
}

// endStates are the states a job ends in.
var endStates = []trainerpb.JobState{
	trainerpb.JobState_JOB_STATE_SUCCEEDED, trainerpb.JobState_JOB_STATE_FAILED, trainerpb.JobState_JOB_STATE_CANCELLED,
}

// allStates are the states shoal_trainer_jobs reports, each always (zero
// when no job is in it), so a query of one never finds nothing.
var allStates = append([]trainerpb.JobState{trainerpb.JobState_JOB_STATE_QUEUED, trainerpb.JobState_JOB_STATE_RUNNING}, endStates...)

// stateLabel is a state's label value: "JOB_STATE_RUNNING" -> "running".
func stateLabel(s trainerpb.JobState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "JOB_STATE_"))
}

func newMetrics(reg prometheus.Registerer, st store, log *slog.Logger) (*metrics, error) {
	m := &metrics{
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_trainer_jobs_finished_total",
			Help: "Training jobs whose end this process recorded, by final state (succeeded, failed, cancelled).",
		}, []string{"state"}),
		images: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_trainer_images_total",
			Help: "Training images this process's jobs trained on, over all their epochs (rate: images per second).",
		}),
		progress: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "shoal_trainer_job_progress_ratio",
			Help: "Fraction of its training steps (all epochs) each job running in this process has done.",
		}, []string{"job"}),
	}
	for _, s := range endStates {
		m.finished.WithLabelValues(stateLabel(s))
	}
	for _, c := range []prometheus.Collector{m.finished, m.images, m.progress, &jobsCollector{st: st, log: log}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// jobsCollector reports shoal_trainer_jobs: every job in the database by
// state, counted at each scrape, so queued jobs (which no process runs
// yet) are seen and every trainer of a split deployment reports the same.
type jobsCollector struct {
	st  store
	log *slog.Logger
}

var jobsDesc = prometheus.NewDesc("shoal_trainer_jobs",
	"Training jobs in the database by state (queued, running, succeeded, failed, cancelled), counted at the scrape.",
	[]string{"state"}, nil)

// jobsCountTimeout bounds the scrape's count query: a database that does
// not answer costs the scrape this series, not the scrape.
const jobsCountTimeout = 2 * time.Second

func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), jobsCountTimeout)
	defer cancel()
	counts, err := c.st.countByState(ctx)
	if err != nil {
		// The database's outage shows on /readyz; the series is left out
		// rather than reported as zero.
		c.log.Debug("counting jobs for /metrics failed", "err", err)
		return
	}
	for _, s := range allStates {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(counts[s]), stateLabel(s))
	}
}
