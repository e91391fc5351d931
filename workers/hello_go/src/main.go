// Command hello_go is an example tqserver worker in Go, standard library only.
//
// It follows the worker contract: it listens on 127.0.0.1:$TQ_PORT, answers
// GET /health once ready, on SIGTERM stops accepting and finishes the requests
// in flight, and exits when its stdin reaches EOF (the server died).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	port := os.Getenv("TQ_PORT")
	if port == "" {
		log.Fatal("TQ_PORT is not set: run this worker under tqserver")
	}
	route := os.Getenv("TQ_WORKER_ROUTE")
	if route == "" {
		route = "/"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		log.Fatalf("listen on port %s: %v", port, err)
	}
	srv := &http.Server{Handler: routes(route), ReadHeaderTimeout: 30 * time.Second}

	done := make(chan struct{})
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
		eof := make(chan struct{})
		go func() {
			// The server never writes to stdin: EOF means it is gone.
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(eof)
		}()
		select {
		case <-stop:
		case <-eof:
		}
		// Stop accepting, let in-flight requests finish; the server SIGKILLs
		// the process group after its grace period anyway.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Printf("shutdown: %v", err)
		}
		close(done)
	}()

	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("serve: %v", err)
	}
	<-done
}

func routes(route string) http.Handler {
	base := strings.TrimSuffix(route, "/")
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	page := func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		if name == "" {
			name = "world"
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html>
<html><head><title>hello_go</title></head>
<body><h1>Hello, %s, from Go</h1>
<p>Worker <code>%s</code>, pid <code>%d</code>, %s, GOMAXPROCS %d.</p>
<p><a href="%s/info">info as JSON</a></p>
</body></html>
`, html.EscapeString(name), html.EscapeString(os.Getenv("TQ_WORKER_NAME")), os.Getpid(),
			runtime.Version(), runtime.GOMAXPROCS(0), html.EscapeString(base))
	}
	mux.HandleFunc(base+"/", page)
	if base != "" {
		mux.HandleFunc(base, page)
	}
	mux.HandleFunc(base+"/info", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"worker":     os.Getenv("TQ_WORKER_NAME"),
			"route":      route,
			"mode":       os.Getenv("TQ_MODE"),
			"pid":        os.Getpid(),
			"go":         runtime.Version(),
			"gomaxprocs": runtime.GOMAXPROCS(0),
			"gomemlimit": os.Getenv("GOMEMLIMIT"),
		})
	})
	mux.HandleFunc(base+"/slow", func(w http.ResponseWriter, r *http.Request) {
		// For trying a drain: a request in flight survives a replace.
		time.Sleep(500 * time.Millisecond)
		fmt.Fprintln(w, "slow done")
	})
	return mux
}
