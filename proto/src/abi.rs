//! Integer conversions at the kernel's x86-64 ABI, each named once.
//!
//! A system call's arguments and result are 64-bit registers; the C types
//! they carry are narrower or signed. These functions are the only `as`
//! casts between them (the workspace denies the lossy cast lints, as
//! Firecracker does), and each says which bits the kernel reads or why no
//! value can be lost, so that a reader never has to wonder whether a cast
//! truncates by accident.

// mosaic runs on x86-64 only: a usize is a u64 there.
const _: () = assert!(usize::BITS == u64::BITS);

/// An `int` (an fd, a PID, a flag word, `AT_FDCWD`) as the register that
/// carries it: sign-extended, as the C calling convention passes it.
#[expect(
    clippy::cast_sign_loss,
    reason = "the register holds the int's two's-complement bits"
)]
pub const fn reg(v: i32) -> u64 {
    v as i64 as u64
}

/// A `long` (an offset, a count the kernel returned) as a register.
#[expect(
    clippy::cast_sign_loss,
    reason = "the register holds the long's two's-complement bits"
)]
pub const fn reg_long(v: i64) -> u64 {
    v as u64
}

/// The `int` argument a register carries: the kernel reads its low 32
/// bits and ignores the rest, so must we.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "the kernel reads an int argument as the register's low 32 bits"
)]
pub const fn int_arg(r: u64) -> i32 {
    r as u32 as i32
}

/// A register as the kernel's signed `long` result (a negative errno on
/// failure).
#[expect(
    clippy::cast_possible_wrap,
    reason = "the register holds the long's two's-complement bits"
)]
pub const fn long(r: u64) -> i64 {
    r as i64
}

/// A size or address in memory: lossless on x86-64 (asserted above).
#[expect(
    clippy::cast_possible_truncation,
    reason = "usize is 64 bits on x86-64"
)]
pub const fn usize_of(v: u64) -> usize {
    v as usize
}

/// An `int` result (an fd, a PID) the kernel returned in a `long`:
/// always in an int's range; -1 (failure) if it were not.
pub fn int_result(r: i64) -> i32 {
    i32::try_from(r).unwrap_or(-1)
}

/// A PID as the kernel gives it (`std::process::id`, `Child::id`):
/// `pid_max` is at most 2^22, so it fits an i32.
#[expect(
    clippy::cast_possible_wrap,
    reason = "PIDs are below pid_max, at most 4194304"
)]
pub const fn pid(id: u32) -> i32 {
    id as i32
}

/// This process's PID as the kernel's interfaces take it.
pub fn my_pid() -> i32 {
    pid(std::process::id())
}

/// A byte count (bounded by the codec to a few MiB) as a call's result.
pub fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A system call number as `seccomp_data` and the wire carry it (x86-64
/// numbers are small and positive; `u32::MAX`, no call, if one were not).
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "checked to be in u32's range"
)]
pub const fn nr(n: i64) -> u32 {
    if n >= 0 && n <= u32::MAX as i64 {
        n as u32
    } else {
        u32::MAX
    }
}

/// Milliseconds of a duration, saturating (u64 milliseconds are 584
/// million years).
pub fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A float as an integer the way Rust's `as` makes it: toward zero,
/// saturating at the type's range, NaN as 0; for estimates and displays
/// (load percentages, speeds, ages), never for a value the kernel reads.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "float-to-int casts saturate, which is what an estimate wants"
)]
pub fn float_to_u64(f: f64) -> u64 {
    f as u64
}

/// [`float_to_u64`] for a u32.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "float-to-int casts saturate, which is what an estimate wants"
)]
pub fn float_to_u32(f: f64) -> u32 {
    f as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_carry_ints_as_the_kernel_reads_them() {
        assert_eq!(reg(-100), 0xffff_ffff_ffff_ff9c); // AT_FDCWD
        assert_eq!(int_arg(reg(-100)), -100);
        assert_eq!(int_arg(0xdead_0000_0000_0007), 7, "high bits ignored");
        assert_eq!(long(reg_long(-4095)), -4095);
        assert_eq!(int_result(-1), -1);
        assert_eq!(int_result(i64::MAX), -1);
        assert_eq!(float_to_u64(-3.0), 0);
        assert_eq!(float_to_u32(1e12), u32::MAX);
        assert_eq!(float_to_u64(f64::NAN), 0);
    }
}
