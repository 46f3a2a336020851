package main

import "github.com/guestinject/guestinject/errs"

// The CLI's whole knowledge of errors: a usage error (exit 2), or a
// failure (exit 1) of one of the classes of package errs, whichever layer
// raised it. The class name goes into --json as "error_class".

// classUsage and classFailed are the error_class of a bad command line
// and of a failure that belongs to no class (an I/O error of the host).
const (
	classUsage  = "usage"
	classFailed = "failed"
)

// classify returns err's class name for --json and the exit status.
func classify(err error) (class string, status int) {
	switch {
	case err == nil:
		return "", exitOK
	case isUsage(err):
		return classUsage, exitUsage
	}
	if name := errs.Name(err); name != "" {
		return name, exitFail
	}
	return classFailed, exitFail
}

// errorClass is classify's class alone ("" for nil).
func errorClass(err error) string {
	c, _ := classify(err)
	return c
}
