//! Linux errno values as returned by the system calls.

use std::fmt;

/// A Linux x86-64 errno: the number, with its name and message for display.
///
/// ```
/// use softmm::Errno;
///
/// assert_eq!(Errno::EINVAL.0, 22);
/// assert_eq!(Errno::from_name("ENOMEM"), Some(Errno::ENOMEM));
/// assert_eq!(Errno::EEXIST.to_string(), "EEXIST (File exists)");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident = $num:literal, $msg:literal;)*) => {
        impl Errno {
            $(#[doc = $msg] pub const $name: Errno = Errno($num);)*

            /// The symbolic name (`"EINVAL"`), or `"E?"` for numbers not listed here.
            pub fn name(self) -> &'static str {
                match self.0 { $($num => stringify!($name),)* _ => "E?" }
            }

            /// The C library message (`"Invalid argument"`).
            pub fn message(self) -> &'static str {
                match self.0 { $($num => $msg,)* _ => "Unknown error" }
            }

            /// Look an errno up by name.
            pub fn from_name(name: &str) -> Option<Errno> {
                match name { $(stringify!($name) => Some(Errno::$name),)* _ => None }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted";
    ENOENT = 2, "No such file or directory";
    ESRCH = 3, "No such process";
    EINTR = 4, "Interrupted system call";
    EIO = 5, "Input/output error";
    ECHILD = 10, "No child processes";
    EBADF = 9, "Bad file descriptor";
    EAGAIN = 11, "Resource temporarily unavailable";
    ENOMEM = 12, "Cannot allocate memory";
    EACCES = 13, "Permission denied";
    EFAULT = 14, "Bad address";
    EBUSY = 16, "Device or resource busy";
    EEXIST = 17, "File exists";
    ENODEV = 19, "No such device";
    ENOTDIR = 20, "Not a directory";
    EISDIR = 21, "Is a directory";
    EINVAL = 22, "Invalid argument";
    ENFILE = 23, "Too many open files in system";
    EMFILE = 24, "Too many open files";
    ETXTBSY = 26, "Text file busy";
    EFBIG = 27, "File too large";
    ENOSPC = 28, "No space left on device";
    ESPIPE = 29, "Illegal seek";
    EROFS = 30, "Read-only file system";
    ENAMETOOLONG = 36, "File name too long";
    ENOSYS = 38, "Function not implemented";
    EOVERFLOW = 75, "Value too large for defined data type";
    EOPNOTSUPP = 95, "Operation not supported";
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.message())
    }
}

/// Result of a system call.
pub type SysResult<T> = Result<T, Errno>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_messages() {
        assert_eq!(Errno::EINVAL.0, 22);
        assert_eq!(Errno::EINVAL.to_string(), "EINVAL (Invalid argument)");
        assert_eq!(Errno::from_name("EEXIST"), Some(Errno::EEXIST));
        assert_eq!(Errno(9999).name(), "E?");
    }
}
