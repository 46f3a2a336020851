package imports

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha512"
)

func md5sum(b []byte) []byte    { s := md5.Sum(b); return s[:] }
func sha1sum(b []byte) []byte   { s := sha1.Sum(b); return s[:] }
func sha512sum(b []byte) []byte { s := sha512.Sum512(b); return s[:] }
