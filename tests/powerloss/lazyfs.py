"""A FUSE file system that forgets what was not fsynced when the power is cut, in the
manner of LazyFS: a test puts ftpgate's state directory on it to check that every upload
acknowledged with 226 survives a power cut, not only a killed process.

  lazyfs.py BACKING MOUNTPOINT

Files live in BACKING. Writes are kept in this process's memory (the "page cache") until
the file is fsynced (fsync or fdatasync), and only then written to BACKING. Killing this
process (SIGKILL) cuts the power: every write not yet fsynced is gone; mount BACKING again
to see what a machine would find after the reboot. Names (create, rename, unlink, mkdir)
reach BACKING at once, like a file system whose journal commits metadata before data
(ext4's default): a file created and never fsynced comes back empty.

An fsync writes the file's pending bytes in place, pausing half-way (LAZYFS_TORN_PAUSE
seconds, default 0.002), so a power cut can land inside it and leave a torn file: some
pending writes on disk, some not, everything fsynced before intact.

Single-threaded (FUSE's -s) and kept simple: it serves one test, not performance.
"""
import errno
import os
import sys
import time

import mfusepy as fuse


# Seconds an fsync waits half-way through writing a file's pending bytes.
TORN_PAUSE = float(os.environ.get("LAZYFS_TORN_PAUSE", "0.002"))


def _write_at(fd, data, offset):
    while data:
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n


class Lazy(fuse.Operations):
    use_ns = True

    def __init__(self, root):
        self.root = os.path.realpath(root)
        # path -> bytearray: the content the running system sees, not yet on disk.
        self.dirty = {}
        self.next_fh = 0

    def _p(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def _load(self, path):
        if path not in self.dirty:
            with open(self._p(path), "rb") as f:
                self.dirty[path] = bytearray(f.read())
        return self.dirty[path]

    def _fh(self):
        self.next_fh += 1
        return self.next_fh

    # --- names (through at once) ---------------------------------------------------

    def getattr(self, path, fh=None):
        try:
            st = os.lstat(self._p(path))
        except OSError as e:
            raise fuse.FuseOSError(e.errno)
        d = {
            "st_mode": st.st_mode,
            "st_nlink": st.st_nlink,
            "st_uid": st.st_uid,
            "st_gid": st.st_gid,
            "st_size": st.st_size,
            "st_atime": st.st_atime_ns,
            "st_mtime": st.st_mtime_ns,
            "st_ctime": st.st_ctime_ns,
        }
        if path in self.dirty:
            d["st_size"] = len(self.dirty[path])
        return d

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._p(path))

    def mkdir(self, path, mode):
        os.mkdir(self._p(path), mode)

    def rmdir(self, path):
        os.rmdir(self._p(path))

    def unlink(self, path):
        os.unlink(self._p(path))
        self.dirty.pop(path, None)

    def rename(self, old, new):
        os.rename(self._p(old), self._p(new))
        moved = {}
        for p in list(self.dirty):
            if p == old or p.startswith(old + "/"):
                moved[new + p[len(old):]] = self.dirty.pop(p)
        self.dirty.pop(new, None)
        self.dirty.update(moved)

    def mknod(self, path, mode, dev):
        os.mknod(self._p(path), mode, dev)

    def chmod(self, path, mode):
        os.chmod(self._p(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._p(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self._p(path), ns=times)

    def statfs(self, path):
        st = os.statvfs(self._p(path))
        return {
            k: getattr(st, k)
            for k in (
                "f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax",
            )
        }

    # --- data (kept until fsync) -----------------------------------------------------

    def create(self, path, mode, fi=None):
        fd = os.open(self._p(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        os.close(fd)
        self.dirty[path] = bytearray()
        return self._fh()

    def open(self, path, flags):
        if not os.path.exists(self._p(path)):
            raise fuse.FuseOSError(errno.ENOENT)
        if flags & os.O_TRUNC:
            self.dirty[path] = bytearray()
        return self._fh()

    def read(self, path, size, offset, fh):
        if path in self.dirty:
            return bytes(self.dirty[path][offset:offset + size])
        with open(self._p(path), "rb") as f:
            f.seek(offset)
            return f.read(size)

    def write(self, path, data, offset, fh):
        buf = self._load(path)
        if offset > len(buf):
            buf.extend(b"\0" * (offset - len(buf)))
        buf[offset:offset + len(data)] = data
        return len(data)

    def truncate(self, path, length, fh=None):
        buf = self._load(path)
        if length < len(buf):
            del buf[length:]
        else:
            buf.extend(b"\0" * (length - len(buf)))

    def fallocate(self, path, mode, offset, length, fh):
        buf = self._load(path)
        if offset + length > len(buf):
            buf.extend(b"\0" * (offset + length - len(buf)))
        return 0

    def fsync(self, path, datasync, fh):
        buf = self.dirty.pop(path, None)
        if buf is None:
            return 0
        # Written in place, front to back, and cut to length only at the end: a power
        # cut in the middle of this leaves part of the pending writes on disk and all
        # that earlier fsyncs made durable intact, as a disk does. (Truncating first, as
        # the first version did, let a cut here wipe bytes fsynced long before: redb
        # then fell back to an older commit and acknowledged uploads were "lost".)
        fd = os.open(self._p(path), os.O_WRONLY)
        try:
            view = memoryview(buf)
            half = len(view) // 2
            _write_at(fd, view[:half], 0)
            # A pause half-way, so the power cuts of a test land inside an fsync now and
            # then and leave a torn file behind, the case recovery must survive.
            time.sleep(TORN_PAUSE)
            _write_at(fd, view[half:], half)
            os.ftruncate(fd, len(view))
            os.fsync(fd)
        finally:
            os.close(fd)
        return 0

    def fsyncdir(self, path, datasync, fh):
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        return 0


def main():
    backing, mountpoint = sys.argv[1], sys.argv[2]
    fuse.FUSE(Lazy(backing), mountpoint, foreground=True, nothreads=True)


if __name__ == "__main__":
    main()
