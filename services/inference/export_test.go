package inference

// SetIdleCheckHook makes s report each idle check's outcome to f; call it
// before Run.
func SetIdleCheckHook(s *Service, f func(model string, version int64, unloaded bool)) {
	s.idleChecked = f
}
