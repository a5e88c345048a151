package ml

import "testing"

// Every architecture takes its own default input, which a job that names
// none trains on.
func TestArchitectureDefaultInput(t *testing.T) {
	for _, a := range Architectures() {
		if err := a.CheckInput(a.DefaultInput()); err != nil {
			t.Errorf("%s.CheckInput(%s) = %v; want its default input accepted", a.Name, a.DefaultInput(), err)
		}
	}
}
