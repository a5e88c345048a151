package trainer

import trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"

// handler is the service's RPC surface. RPCs it does not define yet answer
// UNIMPLEMENTED.
type handler struct {
	trainerpb.UnimplementedTrainerServiceServer
	svc *Service
}

var _ trainerpb.TrainerServiceServer = (*handler)(nil)
