package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// dashboardFile is the Grafana dashboard users import (README:
// Observability).
const dashboardFile = "deployments/grafana/shoal.json"

// dashboard is the part of Grafana's dashboard JSON model this check
// reads; the rest (options, field config) is Grafana's to judge.
type dashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Query string `json:"query"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	// Panels are a collapsed row's.
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// datasourceVar is the dashboard's data source variable: a user picks
// their Prometheus at import or in the dashboard.
const datasourceVar = "datasource"

// grafanaVars are the variables Grafana substitutes in a query before
// Prometheus sees it, with a value of their kind, so the query parses as
// the PromQL it becomes.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// readDashboard decodes the dashboard strictly and checks its shape: a
// Prometheus data source variable, every panel on it, every panel but the
// rows with queries, ids unique, each panel within the 24-column grid.
func readDashboard(t *testing.T) *dashboard {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("%s: title %q, uid %q; want both set (the uid keeps links stable across imports)", dashboardFile, d.Title, d.UID)
	}
	hasVar := slices.ContainsFunc(d.Templating.List, func(v variable) bool {
		return v.Name == datasourceVar && v.Type == "datasource" && v.Query == "prometheus"
	})
	if !hasVar {
		t.Errorf("%s: no templating variable %q of type datasource for prometheus", dashboardFile, datasourceVar)
	}
	ids := map[int]string{}
	queries := 0
	for _, p := range allPanels(d.Panels) {
		where := fmt.Sprintf("%s: panel %d %q", dashboardFile, p.ID, p.Title)
		if other, ok := ids[p.ID]; ok || p.ID == 0 {
			t.Errorf("%s: id not unique (also %q) or missing", where, other)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("%s: gridPos %+v outside Grafana's 24 columns", where, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("%s: want a title and at least one query", where)
		}
		onVar := func(ds *datasource) bool {
			return ds != nil && ds.Type == "prometheus" && ds.UID == "${"+datasourceVar+"}"
		}
		if !onVar(p.Datasource) {
			t.Errorf("%s: datasource %+v; want prometheus ${%s}", where, p.Datasource, datasourceVar)
		}
		for _, q := range p.Targets {
			if q.Expr == "" || q.RefID == "" || (q.Datasource != nil && !onVar(q.Datasource)) {
				t.Errorf("%s: query %q (refId %q, datasource %+v); want an expr and a refId on ${%s}", where, q.Expr, q.RefID, q.Datasource, datasourceVar)
			}
			queries++
		}
	}
	if queries == 0 {
		t.Fatalf("%s: no queries", dashboardFile)
	}
	return &d
}

func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// metricNames parses each query of d as PromQL and returns the metric
// names they select, each with the panels using it.
func metricNames(t *testing.T, d *dashboard) map[string][]string {
	t.Helper()
	p := parser.NewParser(parser.Options{})
	names := map[string][]string{}
	for _, pn := range allPanels(d.Panels) {
		for _, q := range pn.Targets {
			got, err := selected(p, q.Expr)
			if err != nil {
				t.Errorf("%s: panel %q: query %q: %v", dashboardFile, pn.Title, q.Expr, err)
				continue
			}
			for _, n := range got {
				if !slices.Contains(names[n], pn.Title) {
					names[n] = append(names[n], pn.Title)
				}
			}
		}
	}
	return names
}

// selected returns the metric names expr's selectors name, after Grafana's
// variables are substituted; a selector without a plain name (a regexp
// on __name__) is an error, as it cannot be checked.
func selected(p parser.Parser, expr string) ([]string, error) {
	promql := grafanaVars.Replace(expr)
	if strings.Contains(promql, "$") {
		return nil, fmt.Errorf("a variable other than Grafana's $__rate_interval, $__interval and $__range")
	}
	e, err := p.ParseExpr(promql)
	if err != nil {
		return nil, err
	}
	var names []string
	var bad error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			bad = fmt.Errorf("selector %s names no metric", vs)
		} else if !slices.Contains(names, name) {
			names = append(names, name)
		}
		return nil
	})
	return names, bad
}

// TestDashboardIsGrafanaJSONWithPromQL: the dashboard is Grafana's shape
// and each of its queries is PromQL naming its metrics.
func TestDashboardIsGrafanaJSONWithPromQL(t *testing.T) {
	d := readDashboard(t)
	names := metricNames(t, d)
	if len(names) == 0 {
		t.Fatal("the dashboard's queries name no metric")
	}
}

// TestDashboardCheckCatchesMistakes: what the checks above and the
// comparison with a running process reject.
func TestDashboardCheckCatchesMistakes(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	for _, tt := range []struct {
		expr    string
		want    []string
		wantErr bool
	}{
		{`sum by (le) (rate(shoal_http_request_duration_seconds_bucket{route!="none"}[$__rate_interval]))`, []string{"shoal_http_request_duration_seconds_bucket"}, false},
		{`a / on(x) group_left {__name__="b"}`, []string{"a", "b"}, false},
		{`{__name__="c", job="x"}`, []string{"c"}, false},
		{`sum(rate(x[5m])`, nil, true},        // unbalanced
		{`{__name__=~"shoal_.*"}`, nil, true}, // no name to check
		{`rate(x[$interval])`, nil, true},     // a variable the dashboard does not define
		{`histogram_quantile(0.9, y)`, []string{"y"}, false},
	} {
		got, err := selected(p, tt.expr)
		if (err != nil) != tt.wantErr || (!tt.wantErr && !slices.Equal(got, tt.want)) {
			t.Errorf("selected(%q) = %v, %v; want %v (error: %v)", tt.expr, got, err, tt.want, tt.wantErr)
		}
	}

	exported := exportedNames([]byte(`# HELP h a histogram
# TYPE h histogram
h_bucket{le="1"} 1
h_bucket{le="+Inf"} 1
h_sum 0.5
h_count 1
# TYPE c counter
c_total 3
# TYPE s summary
s{quantile="0.5"} 1
s_sum 1
s_count 1
# TYPE g gauge
`))
	for _, n := range []string{"h_bucket", "h_sum", "h_count", "c_total", "s", "s_sum", "s_count"} {
		if !exported[n] {
			t.Errorf("exportedNames: %s missing from %v", n, exported)
		}
	}
	for _, n := range []string{"h", "c", "g"} {
		// A histogram is queried by its series; a family with no
		// series (a vector nobody has used) exports nothing to query.
		if exported[n] {
			t.Errorf("exportedNames: %s present; want only names that have series", n)
		}
	}
}

// exportedNames are the metric names of a Prometheus text exposition that
// a query can select: each sample's name, so a histogram family h gives
// h_bucket, h_sum and h_count, and a family without samples gives none.
func exportedNames(exposition []byte) map[string]bool {
	out := map[string]bool{}
	for line := range bytes.Lines(exposition) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if m := sampleName.FindSubmatch(line); m != nil {
			out[string(m[1])] = true
		}
	}
	return out
}

var sampleName = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]`)
