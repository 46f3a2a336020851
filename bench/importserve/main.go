// Command importserve serves a directory over HTTP on 127.0.0.1 through
// net/http/httptest, as the import tests do, for bench/import.sh: it
// prints the base URL on stdout and serves until killed.
package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: importserve DIR")
		os.Exit(2)
	}
	s := httptest.NewServer(http.FileServer(http.Dir(os.Args[1])))
	defer s.Close()
	fmt.Println(s.URL)
	select {}
}
