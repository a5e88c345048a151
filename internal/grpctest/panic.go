package grpctest

import (
	"sync/atomic"

	"google.golang.org/grpc"
)

// PanicOnFirstSend is a stream interceptor (for Options.StreamInterceptors)
// whose streams panic in the first Send of the server's life: a panic in a
// stream sender, for the tests that show it fails only its own call.
func PanicOnFirstSend() grpc.StreamServerInterceptor {
	var done atomic.Bool
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &sendPanicStream{ServerStream: ss, done: &done})
	}
}

type sendPanicStream struct {
	grpc.ServerStream
	done *atomic.Bool
}

func (s *sendPanicStream) SendMsg(m any) error {
	if s.done.CompareAndSwap(false, true) {
		panic("injected: stream sender")
	}
	return s.ServerStream.SendMsg(m)
}
