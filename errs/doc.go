// Package errs is the one error model of guestinject: a small set of
// error classes that every layer wraps, and one located error that says
// where a failure happened.
//
// Classes. Every layer (formats, partition, lvm, vfs and its engines ext
// and xfs, inject, seed, imports) keeps its own exported sentinels — they
// name the layer's own refusal (partition.ErrCorrupt prints "partition
// table corrupt", formats.ErrCorrupt "corrupt image") — but each of them
// is built with New around exactly one class of this package, so
//
//	errors.Is(err, errs.ErrCorrupt)
//
// is true for a corrupt qcow2 L2 table, a damaged GPT, inconsistent LVM
// metadata and a bad ext extent node alike. A caller that only needs to
// react (a CLI choosing a message and an exit status, a service choosing
// whether to retry) tests the classes and never imports a layer's
// sentinels; a caller that recovers from one precise case (a backing file
// refused by the policy) still tests the layer's sentinel. Class returns
// the class of an error and Name its stable name ("corrupt",
// "unsupported", ...), for reports such as inject's --json.
//
// Refusals that an explicit override lifts (ext's unclean state, orphan
// inodes and multi-mount protection, all lifted by Force) also wrap
// ErrForceable, which is a property and not a class.
//
// Location. *Error names the image file, the partition or logical volume,
// the guest path, the inode, the structure, its block and its byte offset,
// whichever are known, and wraps the cause. The layers' own located types
// (diskerr.Error, partition.Error, ext.CorruptError, xfs.CorruptError)
// convert to it with errors.As, so
//
//	var e *errs.Error
//	if errors.As(err, &e) { ... e.Offset ... }
//
// gives the nearest location, and Locate merges every location of the
// chain (the image from the outer wrapper, the inode and offset from the
// engine) into one.
package errs
