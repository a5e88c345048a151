package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// LeanPredictCall posts one image to POST /predict as RESTPredictCall
// does, over a pool of at most conns kept-alive HTTP/1.1 connections to
// addr, writing a request prepared once and reading the answer with
// http.ReadResponse. The soak's generator shares the server's cores: with
// net/http's client each request cost the generator about 230 µs of CPU
// (goroutines and channels per connection, a request and header maps per
// call), which at twice the saturating rate took a fifth of a 2-core
// machine from the server it measures (RELIABILITY.md, Overload). A call
// waits for a free connection when all are busy, as a Transport with
// MaxConnsPerHost does; each call's deadline is ctx's or timeout.
func LeanPredictCall(addr string, conns int, timeout time.Duration, model string, version int64, image []byte) (CallFunc, func(), error) {
	payload, contentType, err := predictForm(model, version, image)
	if err != nil {
		return nil, nil, err
	}
	head := fmt.Sprintf("POST /predict HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nUser-Agent: shoal-bench\r\n\r\n",
		addr, contentType, len(payload))
	request := append([]byte(head), payload...)
	p := &leanPool{addr: addr, slots: make(chan *leanConn, conns)}
	for range conns {
		p.slots <- nil // a free slot, not yet dialled
	}
	call := func(ctx context.Context) (Timings, error) {
		var c *leanConn
		select {
		case c = <-p.slots:
		case <-ctx.Done():
			return Timings{}, ctx.Err()
		}
		code, retryAfter, body, err := p.roundTrip(ctx, &c, request, timeout)
		p.slots <- c // nil when the connection was closed
		if err != nil {
			return Timings{}, err
		}
		return predictAnswer(code, retryAfter, body)
	}
	return call, p.close, nil
}

// leanPool holds the connections; a slot is nil until dialled, and again
// after its connection failed or was closed by the server.
type leanPool struct {
	addr  string
	slots chan *leanConn
}

type leanConn struct {
	conn net.Conn
	br   *bufio.Reader
}

// roundTrip sends request on *c (dialling it when nil) and reads the
// answer; *c becomes nil when the connection cannot be used again. A kept
// connection the server closed while it was idle fails before any answer:
// the request then goes again, once, on a new connection, as net/http's
// client does.
func (p *leanPool) roundTrip(ctx context.Context, c **leanConn, request []byte, timeout time.Duration) (int, string, []byte, error) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for attempt := 0; ; attempt++ {
		reused := *c != nil
		if !reused {
			d := net.Dialer{Deadline: deadline}
			conn, err := d.DialContext(ctx, "tcp", p.addr)
			if err != nil {
				return 0, "", nil, err
			}
			*c = &leanConn{conn: conn, br: bufio.NewReaderSize(conn, 4096)}
		}
		code, retryAfter, body, answered, err := (*c).exchange(request, deadline)
		if err != nil || answered.close {
			_ = (*c).conn.Close()
			*c = nil
		}
		if err != nil && reused && !answered.started && attempt == 0 {
			continue
		}
		return code, retryAfter, body, err
	}
}

// answerState says whether any of the answer arrived, and whether the
// server closes the connection after it.
type answerState struct{ started, close bool }

// exchange writes request and reads its answer.
func (c *leanConn) exchange(request []byte, deadline time.Time) (code int, retryAfter string, body []byte, st answerState, err error) {
	if err = c.conn.SetDeadline(deadline); err != nil {
		return
	}
	if _, err = c.conn.Write(request); err != nil {
		return
	}
	if _, err = c.br.Peek(1); err != nil {
		return
	}
	st.started = true
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return
	}
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return
	}
	st.close = resp.Close
	return resp.StatusCode, resp.Header.Get("Retry-After"), body, st, nil
}

// close closes the pool's connections, leaving their slots free to dial
// again; call it once no call is running.
func (p *leanPool) close() {
	for range cap(p.slots) {
		if c := <-p.slots; c != nil {
			_ = c.conn.Close()
		}
	}
	for range cap(p.slots) {
		p.slots <- nil
	}
}
