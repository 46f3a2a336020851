package ext

// inlineContent returns the bytes an inline-data file stores, cut to its
// size. A size past them is allowed, as the kernel and e2fsck allow it
// (mke2fs -d makes such a file from an all-hole one): the bytes after the
// stored ones read as zeros. A size past what ext can address is refused.
func (f *FS) inlineContent(in *inode) ([]byte, error) {
	if uint64(in.size) > maxLblk*uint64(f.geo.blockSize) {
		return nil, corrupt("inode", uint64(in.num), 0, -1, "inline size %d is beyond what ext can address", in.size)
	}
	extra, err := f.inlineXattr(in)
	if err != nil {
		return nil, err
	}
	all := append(append([]byte(nil), in.iblock()...), extra...)
	if in.size < int64(len(all)) {
		all = all[:in.size]
	}
	return all, nil
}
