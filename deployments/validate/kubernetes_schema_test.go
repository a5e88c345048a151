package validate

import (
	"sync"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/applyconfigurations"
	kscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/resource"
)

// apiSchema is the Kubernetes API's schema as the API server's server-side
// apply uses it: generated from the API's OpenAPI document and shipped in
// client-go, for every built-in kind.
var apiSchema = sync.OnceValue(func() managedfields.TypeConverter {
	return applyconfigurations.NewTypeConverter(kscheme.Scheme)
})

// checkSchema checks a rendered object, as the manifest writes it, against
// the API's schema: field names and types, and the keys of lists that are
// maps (two containers, ports or variables of one name), which a strict
// decode into the Go types lets through. Custom resources are the CRD's
// (the ServiceMonitor: decoded with the Prometheus Operator's types).
func checkSchema(r *resource.Resource) error {
	if r.GetApiVersion() == monitoringv1.SchemeGroupVersion.String() {
		return nil
	}
	m, err := r.Map()
	if err != nil {
		return err
	}
	_, err = apiSchema().ObjectToTyped(&unstructured.Unstructured{Object: m})
	return err
}
