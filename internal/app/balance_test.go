package app_test

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/shoalml/shoal/internal/app"
	"github.com/shoalml/shoal/internal/app/apptest"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

// dnsServer answers A and AAAA queries for one name with fixed addresses,
// as the cluster DNS answers for a headless Service: one record per ready
// pod, every pod on the same port. Other names do not exist.
type dnsServer struct {
	addr    string // UDP host:port
	queries atomic.Int64
}

func startDNS(t *testing.T, name string, addrs ...netip.Addr) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	s := &dnsServer{addr: pc.LocalAddr().String()}
	fqdn := dnsmessage.MustNewName(name + ".")
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			s.queries.Add(1)
			ours := strings.EqualFold(q.Name.String(), fqdn.String())
			rcode := dnsmessage.RCodeSuccess
			if !ours {
				rcode = dnsmessage.RCodeNameError
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionAvailable: true, RCode: rcode})
			b.StartQuestions()
			b.Question(q)
			b.StartAnswers()
			for _, a := range addrs {
				rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET}
				switch {
				case !ours:
				case q.Type == dnsmessage.TypeA && a.Is4():
					rh.Type = dnsmessage.TypeA
					b.AResource(rh, dnsmessage.AResource{A: a.As4()})
				case q.Type == dnsmessage.TypeAAAA && a.Is6():
					rh.Type = dnsmessage.TypeAAAA
					b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
				}
			}
			msg, err := b.Finish()
			if err == nil {
				pc.WriteTo(msg, from)
			}
		}
	}()
	return s
}

// listenOnEvery listens on one port of every address, as the pods of a
// headless Service each serve on the same port.
func listenOnEvery(t *testing.T, addrs ...netip.Addr) (int, []net.Listener) {
	t.Helper()
	for range 100 {
		first, err := net.Listen("tcp", netip.AddrPortFrom(addrs[0], 0).String())
		if err != nil {
			t.Fatal(err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		lis := []net.Listener{first}
		for _, a := range addrs[1:] {
			l, err := net.Listen("tcp", netip.AddrPortFrom(a, uint16(port)).String())
			if err != nil {
				break
			}
			lis = append(lis, l)
		}
		if len(lis) == len(addrs) {
			return port, lis
		}
		for _, l := range lis {
			l.Close()
		}
	}
	t.Fatalf("no port free on every one of %v", addrs)
	return 0, nil
}

// predictsServed is how many Predict calls a process answered OK, from its
// /metrics.
func predictsServed(t *testing.T, httpURL string) int {
	t.Helper()
	resp, err := http.Get(httpURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	const series = `grpc_server_handled_total{grpc_code="OK",grpc_method="Predict",grpc_service="shoal.inference.v1.InferenceService",grpc_type="unary"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s/metrics: %q: %v", httpURL, sc.Text(), err)
			}
			return int(n)
		}
	}
	return 0
}

// TestGatewayReachesEveryReplicaOfAName: the gateway's inference address
// is one name that DNS resolves to two addresses, a replica listening on
// each at the same port (a headless Service of two pods); predictions
// through the gateway reach both replicas, each counting its own in
// /metrics.
func TestGatewayReachesEveryReplicaOfAName(t *testing.T) {
	secret := strings.Repeat("s", 32)
	cfg := defaults(t)
	shared(t, &cfg)
	cfg.Target = "auth,registry,dataset,trainer"
	cfg.Gate.ServiceToken = secret
	services := start(t, cfg)
	uploadClassifier(t, services, "fish")

	pods := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
	port, listeners := listenOnEvery(t, pods...)
	var replicas []*apptest.Process
	for _, lis := range listeners {
		icfg := defaults(t)
		icfg.Target = app.Inference
		icfg.Blob = cfg.Blob
		icfg.Gate.ServiceToken = secret
		*icfg.Clients.Addresses[app.Auth] = services.addr
		*icfg.Clients.Addresses[app.Registry] = services.addr
		replicas = append(replicas, apptest.StartOn(t, icfg, nil, app.Listeners{GRPC: lis, HTTP: apptest.Listen(t)}))
	}

	const name = "inference.shoal.test"
	dns := startDNS(t, name, pods...)
	gcfg := defaults(t)
	gcfg.Target = app.Gateway
	gcfg.Gate.ServiceToken = secret
	for _, s := range app.Services {
		*gcfg.Clients.Addresses[s] = services.addr
	}
	*gcfg.Clients.Addresses[app.Inference] = "dns://" + dns.addr + "/" + net.JoinHostPort(name, strconv.Itoa(port))
	gw := start(t, gcfg)

	img := imagingtest.PNG(11, 7, 3)
	// Until both replicas have answered: round robin takes each into its
	// rotation as its connection becomes ready.
	calls := 0
	for ; calls < 200 && (calls < 20 || predictsServed(t, replicas[0].HTTPURL) == 0 || predictsServed(t, replicas[1].HTTPURL) == 0); calls++ {
		if code, body := postImage(t, http.DefaultClient, gw.http+"/predict?model=fish&version=1", img); code != http.StatusOK {
			t.Fatalf("POST /predict #%d through the gateway = %d %s", calls, code, body)
		}
	}
	served := []int{predictsServed(t, replicas[0].HTTPURL), predictsServed(t, replicas[1].HTTPURL)}
	t.Logf("%d predictions: %d answered at %s, %d at %s", calls, served[0], replicas[0].GRPCAddr, served[1], replicas[1].GRPCAddr)
	if served[0] == 0 || served[1] == 0 || served[0]+served[1] != calls {
		t.Errorf("Predict calls answered per replica (/metrics): %v after %d predictions; want both to answer some, %d in all", served, calls, calls)
	}
	if dns.queries.Load() == 0 {
		t.Errorf("the DNS server at %s was never asked; want the gateway to resolve %s there", dns.addr, name)
	}
}
