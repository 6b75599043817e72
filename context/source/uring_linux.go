package source

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ring is the little of io_uring that SmallReader needs: one submission
// queue, one completion queue, and a sparse table of direct descriptors
// (files opened into the ring, never into the process's descriptor
// table). It is not safe for concurrent use. golang.org/x/sys has the
// system call numbers but none of the structures, so they are here, as
// include/uapi/linux/io_uring.h lays them out.
type ring struct {
	fd      int
	sqTail  *uint32
	sqMask  uint32
	sqArray []uint32
	sqes    []sqe
	queued  uint32 // entries filled since the last submit
	cqHead  *uint32
	cqTail  *uint32
	cqMask  uint32
	cqes    []cqe
	mems    [][]byte
}

// uringParams is struct io_uring_params.
type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  [10]uint32 // struct io_sqring_offsets
	cqOff                                                                  [10]uint32 // struct io_cqring_offsets
}

// Offsets into io_sqring_offsets and io_cqring_offsets.
const (
	offHead  = 0
	offTail  = 1
	offMask  = 2
	offArray = 6 // sq: array
	offCQEs  = 5 // cq: cqes
)

// sqe is struct io_uring_sqe.
type sqe struct {
	opcode    uint8
	flags     uint8
	ioprio    uint16
	fd        int32
	off       uint64
	addr      uint64
	len       uint32
	opFlags   uint32
	userData  uint64
	bufIndex  uint16
	personal  uint16
	fileIndex uint32
	addr3     uint64
	_         uint64
}

// cqe is struct io_uring_cqe.
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// The kernel's sizes, checked when compiling.
var (
	_ [64]byte  = [unsafe.Sizeof(sqe{})]byte{}
	_ [16]byte  = [unsafe.Sizeof(cqe{})]byte{}
	_ [120]byte = [unsafe.Sizeof(uringParams{})]byte{}
)

const (
	opOpenat = 18 // IORING_OP_OPENAT
	opClose  = 19 // IORING_OP_CLOSE
	opRead   = 22 // IORING_OP_READ

	sqeFixedFile = 1 << 0 // IOSQE_FIXED_FILE: fd is a slot of the ring's table
	sqeHardlink  = 1 << 3 // IOSQE_IO_HARDLINK: start the next entry after this one, whatever its result

	enterGetEvents     = 1 << 0     // IORING_ENTER_GETEVENTS
	registerFiles2     = 13         // IORING_REGISTER_FILES2
	rsrcRegisterSparse = 1 << 0     // IORING_RSRC_REGISTER_SPARSE
	offSQEs            = 0x10000000 // IORING_OFF_SQES
)

// newRing sets up a ring of at least entries submissions and a table of
// slots direct descriptors, on a kernel with the features asked for.
func newRing(entries, slots, features uint32) (*ring, error) {
	var p uringParams
	fd, err := retry("io_uring_setup", "", func() (int, error) {
		r, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
		if e != 0 {
			return -1, e
		}
		return int(r), nil
	})
	if err != nil {
		return nil, err
	}
	r := &ring{fd: fd}
	if p.features&features != features {
		r.close()
		return nil, unix.ENOTSUP
	}
	if err := r.mapRings(&p); err != nil {
		r.close()
		return nil, err
	}
	reg := struct {
		nr, flags, resv2 uint32
		data, tags       uint64
	}{nr: slots, flags: rsrcRegisterSparse}
	if _, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(fd), registerFiles2, uintptr(unsafe.Pointer(&reg)), unsafe.Sizeof(reg), 0, 0); e != 0 {
		r.close()
		return nil, e
	}
	return r, nil
}

func (r *ring) mapRings(p *uringParams) error {
	size := max(p.sqOff[offArray]+p.sqEntries*4, p.cqOff[offCQEs]+p.cqEntries*uint32(unsafe.Sizeof(cqe{})))
	mem, err := unix.Mmap(r.fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return err
	}
	r.mems = append(r.mems, mem)
	base := unsafe.Pointer(&mem[0])
	field := func(off uint32) *uint32 { return (*uint32)(unsafe.Add(base, off)) }
	r.sqTail = field(p.sqOff[offTail])
	r.sqMask = *field(p.sqOff[offMask])
	r.sqArray = unsafe.Slice(field(p.sqOff[offArray]), p.sqEntries)
	r.cqHead = field(p.cqOff[offHead])
	r.cqTail = field(p.cqOff[offTail])
	r.cqMask = *field(p.cqOff[offMask])
	r.cqes = unsafe.Slice((*cqe)(unsafe.Add(base, p.cqOff[offCQEs])), p.cqEntries)
	smem, err := unix.Mmap(r.fd, offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(sqe{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return err
	}
	r.mems = append(r.mems, smem)
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&smem[0])), p.sqEntries)
	return nil
}

// close releases the ring; closing it again does nothing (its
// descriptor's number may belong to another file by then).
func (r *ring) close() {
	for _, m := range r.mems {
		unix.Munmap(m)
	}
	r.mems = nil
	if r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}

// next returns a zeroed submission entry to fill. The caller must not
// queue more than the ring holds between submits.
func (r *ring) next() *sqe {
	i := (*r.sqTail + r.queued) & r.sqMask
	r.sqArray[i] = i
	r.queued++
	s := &r.sqes[i]
	*s = sqe{}
	return s
}

// submitAndWait hands the queued entries to the kernel and waits until
// want completions are ready, calling done for each in turn.
func (r *ring) submitAndWait(want int, done func(*cqe)) error {
	atomic.StoreUint32(r.sqTail, *r.sqTail+r.queued) // release: the entries are written
	submit := r.queued
	r.queued = 0
	for want > 0 {
		n, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(submit), uintptr(want), enterGetEvents, 0, 0)
		switch {
		case e == unix.EINTR:
			continue // a signal cut the wait short; what was submitted stays submitted
		case e != 0:
			return e
		}
		submit -= uint32(n)
		head := *r.cqHead
		tail := atomic.LoadUint32(r.cqTail) // acquire: the completions are written
		for ; head != tail; head++ {
			done(&r.cqes[head&r.cqMask])
			want--
		}
		atomic.StoreUint32(r.cqHead, head)
	}
	return nil
}
