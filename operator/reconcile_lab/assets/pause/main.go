// The pod sandbox's first process: it holds the pod's namespaces and does nothing else.
//
// Sleeps until SIGINT or SIGTERM and reaps the zombies of orphaned children meanwhile. Built
// static (CGO_ENABLED=0) into an image FROM scratch, so that no registry is ever needed.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	children := make(chan os.Signal, 16)
	signal.Notify(children, syscall.SIGCHLD)
	for {
		select {
		case <-stop:
			os.Exit(0)
		case <-children:
			for {
				var status syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}
