package registry

import registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"

// handler is the service's RPC surface. RPCs it does not define yet answer
// UNIMPLEMENTED.
type handler struct {
	registrypb.UnimplementedRegistryServiceServer
	svc *Service
}

var _ registrypb.RegistryServiceServer = (*handler)(nil)
