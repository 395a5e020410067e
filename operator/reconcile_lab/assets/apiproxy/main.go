// Lets pods reach an apiserver that listens on 127.0.0.1 only: TCP from LISTEN to TARGET.
//
// Usage: apiproxy LISTEN TARGET, e.g. apiproxy 10.233.77.1:32760 127.0.0.1:32760. The bytes
// pass untouched (TLS is end to end); nothing is logged but errors.
package main

import (
	"io"
	"log"
	"net"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatalf("usage: %s LISTEN TARGET", os.Args[0])
	}
	listener, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	for {
		client, err := listener.Accept()
		if err != nil {
			log.Print(err)
			continue
		}
		go forward(client, os.Args[2])
	}
}

func forward(client net.Conn, target string) {
	defer client.Close()
	server, err := net.Dial("tcp", target)
	if err != nil {
		log.Print(err)
		return
	}
	defer server.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(server, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, server); done <- struct{}{} }()
	<-done
}
