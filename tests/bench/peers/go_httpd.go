// go_httpd.go - demo/httpd's GET / in Go's net/http, for `make bench-io`:
// the same page with the same headers, keep-alive as net/http does it.
// Run with GOMAXPROCS=1 to compare with one libfiber loop.
//
//	go_httpd PORT
//
// Listens on 127.0.0.1:PORT (0 picks a free port), prints the address,
// serves until killed.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

const page = "Hello from libfiber's httpd.\n" +
	"Each connection is served by a fiber of its own; try /sleep?s=0.5 many\n" +
	"times at once and see them overlap.\n"

func main() {
	port := "0"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_httpd:", err)
		os.Exit(1)
	}
	body := []byte(page)
	length := strconv.Itoa(len(body))
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/plain; charset=utf-8"}
		h["Content-Length"] = []string{length}
		w.Write(body)
	})
	fmt.Printf("go_httpd: listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	server := &http.Server{Handler: handler, IdleTimeout: 10 * time.Second,
		ReadHeaderTimeout: 10 * time.Second}
	server.Serve(ln)
}
