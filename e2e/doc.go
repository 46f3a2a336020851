// Package e2e holds the end-to-end tests of the inject command on disk
// images as users have them: raw and qcow2 images (every qcow2 variant
// qemu-img makes, overlays, a three-deep backing chain, the nova overlay
// flow), with no partition table, MBR, MBR with logical partitions, or
// GPT. Images are built with the reference tools (qemu-img, sfdisk,
// sgdisk, mkfs.ext4 -d, debugfs); the built `inject` binary is run on them;
// after every write qemu-img check, qemu-img compare and e2fsck -fn are the
// oracles. The package has no non-test code.
package e2e
