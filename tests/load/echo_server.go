// echo_server.go - the line echo server of demo/echo_server in Go, one
// goroutine per connection, for tests/load/echo_load.sh (run it with
// GOMAXPROCS=1 to compare with one libfiber loop).
//
//	echo_server PORT
//
// Listens on 127.0.0.1:PORT (0 picks a free port), prints the address,
// echoes every line until the client closes; stops on SIGINT or SIGTERM.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func serve(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	w := bufio.NewWriter(conn)
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			w.Write(line)
			// Flush once nothing more is buffered: one write per batch.
			if r.Buffered() == 0 && w.Flush() != nil {
				return
			}
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

func main() {
	port := "0"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo_server.go:", err)
		os.Exit(1)
	}
	fmt.Printf("echo_server.go: listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(conn)
		}
	}()
	<-stop
	ln.Close()
	fmt.Println("echo_server.go: stopping")
}
