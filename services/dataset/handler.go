package dataset

import datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"

// handler is the service's RPC surface. RPCs it does not define yet answer
// UNIMPLEMENTED.
type handler struct {
	datasetpb.UnimplementedDatasetServiceServer
	svc *Service
}

var _ datasetpb.DatasetServiceServer = (*handler)(nil)
