package local

// RefusesMultiLinked reports that this backend refuses to write, chmod or
// chown a non-directory with several hard links (another name of it may lie
// outside the guest root). The injectors' planning asks, so that such a
// file fails its item before the first write rather than half-way.
func (l *FS) RefusesMultiLinked() bool { return true }
