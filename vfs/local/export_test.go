package local

// SetHook installs h to run between resolution and the final host
// operation, so tests can race the directory the way an attacker would.
func SetHook(l *FS, h func(op, rel string)) { l.hook = h }
