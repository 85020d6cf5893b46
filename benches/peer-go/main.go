// tinyprom's app on Go net/http and client_golang's promhttp, written as a user of
// those libraries would write it, for `make bench-http` to compare with.
//
// Routes: /up ("I am running!"), /synthetic (sleeps 1-50 ms, then answers a status
// drawn from 200, 200, 200, 200, 200, 400, 401, 500) and /metrics (promhttp's
// handler on the default registry, with its Go and process collectors). Every request
// is observed in http_request_duration_seconds{method,url,code} with buckets 0.01,
// 0.1, 0.5 and 2. Flag: --web.listen-address=HOST:PORT (default 127.0.0.1:8000);
// prints "listening on http://ADDR" on stderr once bound, as tinyprom does.
//
// Built offline from Debian's packages:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o peer-go main.go
package main

import (
	"flag"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var syntheticCodes = []int{200, 200, 200, 200, 200, 400, 401, 500}

var duration = promauto.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "http_request_duration_seconds",
	Help:    "Duration of HTTP requests in seconds.",
	Buckets: []float64{0.01, 0.1, 0.5, 2},
}, []string{"method", "url", "code"})

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// red times a route's handler and observes it under the route's path.
func red(url string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		duration.WithLabelValues(r.Method, url, strconv.Itoa(rec.code)).
			Observe(time.Since(start).Seconds())
	})
}

func main() {
	addr := flag.String("web.listen-address", "127.0.0.1:8000", "HOST:PORT to listen on")
	flag.Parse()
	mux := http.NewServeMux()
	mux.Handle("/up", red("/up", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("I am running!"))
	})))
	mux.Handle("/synthetic", red("/synthetic", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Duration(1+rand.Intn(50)) * time.Millisecond)
		w.WriteHeader(syntheticCodes[rand.Intn(len(syntheticCodes))])
	})))
	mux.Handle("/metrics", red("/metrics", promhttp.Handler()))
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "peer-go: cannot listen on %s: %v\n", *addr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "peer-go listening on http://%s\n", listener.Addr())
	if err := http.Serve(listener, mux); err != nil {
		fmt.Fprintf(os.Stderr, "peer-go: %v\n", err)
		os.Exit(1)
	}
}
