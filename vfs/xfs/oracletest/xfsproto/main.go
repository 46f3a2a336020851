// Command xfsproto prints a mkfs.xfs protofile for a host directory (see
// oracletest.WriteProtofile for what the format cannot express).
//
//	go run ./vfs/xfs/oracletest/xfsproto SRC > proto && mkfs.xfs -p proto img
package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/guestinject/guestinject/vfs/xfs/oracletest"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: xfsproto SRCDIR > protofile")
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	if err := oracletest.WriteProtofile(w, os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "xfsproto:", err)
		os.Exit(1)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "xfsproto:", err)
		os.Exit(1)
	}
}
