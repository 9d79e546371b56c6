//! Open files, the private file namespace and file-descriptor tables.
//!
//! Files are page caches ([`PageCache`]) of the `File` or `Memfd` kind, held in memory.
//! An [`OpenFile`] is Linux's `struct file`: an object plus the access mode it was
//! opened with; VMAs hold it (so closing the descriptor keeps a mapping's file alive),
//! and two VMAs merge only if they hold the *same* open file (`vma->vm_file ==
//! file`), exactly as Linux compares pointers. [`Namespace`] maps paths to objects
//! (a private directory: no permissions, no directories); [`FdTable`] maps descriptors
//! to open files, lowest free number first from 3 (0-2 are the standard streams).
//!
//! Errors follow Linux's order for each call (`do_sys_openat2`, `memfd_create`,
//! `do_ftruncate`, `ksys_pwrite64`, `close`).

use std::{collections::BTreeMap, collections::HashMap, sync::Arc};

use crate::{
    abi::*,
    error::Errno,
    error::SysResult,
    frame::PhysMem,
    pagecache::{ObjectKind, PageCache, ShortWrite},
    sync::Mutex,
};

/// The device files of the namespace show in maps (a tmpfs-like mount).
pub const FILE_DEV: (u32, u32) = (0, 0x2a);

/// The device disk files a replay knows by path show in maps.
pub const DISK_DEV: (u32, u32) = (0xfe, 0);

/// The largest file size (`MAX_LFS_FILESIZE`).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// What an open file refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenKind {
    /// A regular file or memfd.
    Regular,
    /// The namespace's directory (opened with `O_DIRECTORY`): no `mmap` (`ENODEV`).
    Directory,
    /// An `O_PATH` descriptor: good for nothing but naming (`EBADF` for I/O and mmap).
    Path,
}

/// An open file description (`struct file`).
#[derive(Debug)]
pub struct OpenFile {
    /// The object it reads and writes.
    pub object: Arc<PageCache>,
    /// Opened for reading (`FMODE_READ`).
    pub readable: bool,
    /// Opened for writing (`FMODE_WRITE`).
    pub writable: bool,
    /// What it refers to.
    pub kind: OpenKind,
}

impl OpenFile {
    /// A new open file of a regular `object`.
    pub fn new(object: Arc<PageCache>, readable: bool, writable: bool) -> Arc<Self> {
        Arc::new(Self {
            object,
            readable,
            writable,
            kind: OpenKind::Regular,
        })
    }
}

/// A namespace of file paths (the private directory of a run).
#[derive(Debug)]
pub struct Namespace {
    pm: Arc<PhysMem>,
    files: Mutex<HashMap<String, Arc<PageCache>>>,
}

impl Namespace {
    /// A namespace whose files live in `pm`, empty but for the device `/dev/zero`.
    pub fn new(pm: &Arc<PhysMem>) -> Self {
        let zero = PageCache::zero_device(pm);
        Self {
            pm: Arc::clone(pm),
            files: Mutex::new(HashMap::from([("/dev/zero".to_string(), zero)])),
        }
    }

    /// `openat(AT_FDCWD, path, flags, mode)`: the open file. Truncation (`O_TRUNC`) is
    /// left to the caller, which must unmap the pages first: `Ok((file, truncate))`.
    pub fn open(&self, path: &[u8], flags: u64) -> SysResult<(Arc<OpenFile>, bool)> {
        if flags & O_TMPFILE == O_TMPFILE {
            return Err(Errno::EINVAL);
        }
        let name = Self::name(path)?;
        let acc = flags & O_ACCMODE;
        if name == "/" {
            // The namespace's one directory: readable only.
            if acc != O_RDONLY || flags & O_CREAT != 0 {
                return Err(Errno::EISDIR);
            }
            let obj = PageCache::with_kind(&self.pm, 0, "/", ObjectKind::File, FILE_DEV);
            let kind = if flags & O_PATH != 0 {
                OpenKind::Path
            } else {
                OpenKind::Directory
            };
            let f = OpenFile {
                object: obj,
                readable: kind == OpenKind::Directory,
                writable: false,
                kind,
            };
            return Ok((Arc::new(f), false));
        }
        let mut files = self.files.lock();
        let obj = match files.get(&name) {
            Some(_) if flags & O_PATH == 0 && flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL => {
                return Err(Errno::EEXIST);
            }
            Some(o) => Arc::clone(o),
            None if flags & O_CREAT == 0 || flags & O_PATH != 0 => return Err(Errno::ENOENT),
            None => {
                let o = PageCache::with_kind(&self.pm, 0, &name, ObjectKind::File, FILE_DEV);
                files.insert(name, Arc::clone(&o));
                o
            }
        };
        if flags & O_DIRECTORY != 0 {
            return Err(Errno::ENOTDIR);
        }
        if flags & O_PATH != 0 {
            let f = OpenFile {
                object: obj,
                readable: false,
                writable: false,
                kind: OpenKind::Path,
            };
            return Ok((Arc::new(f), false));
        }
        let readable = acc == O_RDONLY || acc == O_RDWR;
        let writable = acc == O_WRONLY || acc == O_RDWR;
        // O_TRUNC means nothing to a device.
        let truncate = flags & O_TRUNC != 0 && writable && obj.kind() != &ObjectKind::ZeroDevice;
        Ok((OpenFile::new(obj, readable, writable), truncate))
    }

    /// The object at `path`, created if absent: how a trace replay knows files it never
    /// saw opened. Its size is unknown, so it is taken as the largest possible (a trace
    /// does not fault). The path is the name maps shows (`/memfd:x (deleted)` included);
    /// memfds and files under `/dev/shm` are shmem (no 2 MiB placement), others disk files.
    pub fn object(&self, path: &str) -> Arc<PageCache> {
        let mut files = self.files.lock();
        Arc::clone(files.entry(path.to_string()).or_insert_with(|| {
            let (kind, dev) = if path.starts_with("/memfd:") {
                (ObjectKind::Memfd, (0, 1))
            } else if path.starts_with("/dev/shm/") {
                (ObjectKind::File, FILE_DEV)
            } else {
                (ObjectKind::DiskFile, DISK_DEV)
            };
            PageCache::with_kind(&self.pm, MAX_FILE_SIZE, path, kind, dev)
        }))
    }

    /// The absolute name of `path` in the namespace (relative paths live under `/`).
    fn name(path: &[u8]) -> SysResult<String> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if path.len() >= 4096 {
            return Err(Errno::ENAMETOOLONG);
        }
        if path.contains(&0) {
            // The string ends at its first NUL, as a C string does.
            return Self::name(&path[..path.iter().position(|&b| b == 0).unwrap_or(0)]);
        }
        let s = String::from_utf8_lossy(path);
        let abs = if s.starts_with('/') {
            s.into_owned()
        } else {
            format!("/{s}")
        };
        // The directory itself: "/", ".", "./", "/.".
        let trimmed = abs.trim_end_matches('/').trim_end_matches("/.");
        if trimmed.is_empty() || trimmed == "/" {
            return Ok("/".to_string());
        }
        if abs.ends_with('/') {
            return Err(Errno::EISDIR);
        }
        Ok(abs)
    }
}

/// `memfd_create(name, flags)`: a new, empty memfd object opened read-write.
pub fn memfd_create(pm: &Arc<PhysMem>, name: &[u8], flags: u64) -> SysResult<Arc<OpenFile>> {
    let all = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;
    if flags & MFD_HUGETLB == 0 && flags & !all != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MFD_HUGETLB != 0 {
        // No hugetlb pool (nr_hugepages = 0): the hugetlbfs file cannot be sized.
        return Err(Errno::EINVAL);
    }
    if flags & MFD_EXEC != 0 && flags & MFD_NOEXEC_SEAL != 0 {
        return Err(Errno::EINVAL);
    }
    let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
    if name.len() > MFD_NAME_MAX_LEN {
        return Err(Errno::EINVAL);
    }
    let shown = format!("/memfd:{} (deleted)", String::from_utf8_lossy(name));
    let obj = PageCache::with_kind(pm, 0, &shown, ObjectKind::Memfd, (0, 1));
    Ok(OpenFile::new(obj, true, true))
}

/// A process's file-descriptor table.
#[derive(Debug, Default, Clone)]
pub struct FdTable {
    fds: BTreeMap<i64, Arc<OpenFile>>,
}

impl FdTable {
    /// The lowest free descriptor number (from 3) now refers to `file`.
    pub fn install(&mut self, file: Arc<OpenFile>) -> i64 {
        let mut fd = 3;
        for &k in self.fds.range(3..).map(|(k, _)| k) {
            if k != fd {
                break;
            }
            fd += 1;
        }
        self.fds.insert(fd, file);
        fd
    }

    /// Make `fd` refer to `file` (replacing what it referred to): a replay learns the
    /// numbers from the trace.
    pub fn install_at(&mut self, fd: i64, file: Arc<OpenFile>) {
        self.fds.insert(fd, file);
    }

    /// The open file behind `fd`.
    pub fn get(&self, fd: i64) -> SysResult<Arc<OpenFile>> {
        self.fds.get(&fd).cloned().ok_or(Errno::EBADF)
    }

    /// `close(fd)`.
    pub fn close(&mut self, fd: i64) -> SysResult<()> {
        self.fds.remove(&fd).map(|_| ()).ok_or(Errno::EBADF)
    }
}

/// `pwrite64(fd, data, off)` on an open file.
pub fn pwrite(file: &OpenFile, data: &[u8], off: i64) -> SysResult<usize> {
    if file.kind == OpenKind::Directory {
        return Err(Errno::EISDIR);
    }
    if !file.writable {
        return Err(Errno::EBADF);
    }
    if off < 0 {
        return Err(Errno::EINVAL);
    }
    let off = off as u64;
    if off
        .checked_add(data.len() as u64)
        .is_none_or(|e| e > MAX_FILE_SIZE)
    {
        return Err(Errno::EFBIG);
    }
    match file.object.write(data, off) {
        Ok(n) => Ok(n),
        Err(ShortWrite { written: 0 }) => Err(Errno::ENOSPC),
        Err(ShortWrite { written }) => Ok(written),
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;

    fn pm() -> Arc<PhysMem> {
        PhysMem::new(8 << 20).unwrap()
    }

    #[test]
    fn open_creates_only_with_o_creat() {
        let ns = Namespace::new(&pm());
        assert_eq!(ns.open(b"a.dat", O_RDWR).unwrap_err(), Errno::ENOENT);
        let (f, trunc) = ns.open(b"a.dat", O_RDWR | O_CREAT).unwrap();
        assert!(f.readable && f.writable && !trunc);
        assert_eq!(f.object.name(), "/a.dat");
        assert_eq!(
            ns.open(b"a.dat", O_RDWR | O_CREAT | O_EXCL).unwrap_err(),
            Errno::EEXIST
        );
        let (g, _) = ns.open(b"/a.dat", O_RDONLY).unwrap();
        assert!(Arc::ptr_eq(&f.object, &g.object));
        assert!(g.readable && !g.writable);
        assert!(!Arc::ptr_eq(&f, &g), "each open is its own struct file");
        assert_eq!(ns.open(b"", O_RDONLY).unwrap_err(), Errno::ENOENT);
        assert!(ns.open(b"a.dat", O_WRONLY | O_TRUNC).unwrap().1);
    }

    #[test]
    fn descriptors_are_lowest_free_from_three() {
        let pm = pm();
        let mut t = FdTable::default();
        let f = memfd_create(&pm, b"x", 0).unwrap();
        assert_eq!(t.install(Arc::clone(&f)), 3);
        assert_eq!(t.install(Arc::clone(&f)), 4);
        t.close(3).unwrap();
        assert_eq!(t.close(3).unwrap_err(), Errno::EBADF);
        assert_eq!(t.install(Arc::clone(&f)), 3);
        assert_eq!(t.get(9).unwrap_err(), Errno::EBADF);
    }

    #[test]
    fn memfd_names_and_flag_checks() {
        let pm = pm();
        let f = memfd_create(&pm, b"example", MFD_CLOEXEC).unwrap();
        assert_eq!(f.object.name(), "/memfd:example (deleted)");
        assert_eq!(f.object.dev(), (0, 1));
        assert_eq!(memfd_create(&pm, b"x", 0x100).unwrap_err(), Errno::EINVAL);
        assert_eq!(
            memfd_create(&pm, &[b'n'; 250], 0).unwrap_err(),
            Errno::EINVAL
        );
        assert!(memfd_create(&pm, &[b'n'; 249], 0).is_ok());
    }

    #[test]
    fn pwrite_grows_and_truncate_zeroes_the_tail() {
        let pm = pm();
        let f = memfd_create(&pm, b"t", 0).unwrap();
        assert_eq!(pwrite(&f, b"hello world", 4090).unwrap(), 11);
        assert_eq!(f.object.size(), 4101);
        let mut buf = [0u8; 16];
        assert_eq!(f.object.read(&mut buf, 4090), 11);
        assert_eq!(&buf[..11], b"hello world");
        f.object.set_size(4093);
        f.object.set_size(8192);
        assert_eq!(f.object.read(&mut buf, 4090), 16);
        assert_eq!(&buf[..11], b"hel\0\0\0\0\0\0\0\0");
        let ro = OpenFile::new(Arc::clone(&f.object), true, false);
        assert_eq!(pwrite(&ro, b"x", 0).unwrap_err(), Errno::EBADF);
        assert_eq!(pwrite(&f, b"x", -1).unwrap_err(), Errno::EINVAL);
    }
}
