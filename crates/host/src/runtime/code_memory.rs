//! Running the built-in sink's machine code where it lies in the binary.
//!
//! The default sink is precompiled at build time and embedded in the binary
//! ([`super::DEFAULT_SINK_PRECOMPILED`], page-aligned). wasmtime can use such
//! an image in place ([`Component::deserialize_raw`]) instead of copying its
//! 0.75 MB into fresh memory (a third of a warm one-shot `chainsink emit`,
//! issue 15) or mapping a copy of it from a file (which must then be checked
//! byte for byte against the binary's). In place there is nothing to copy,
//! nothing to compare and no file to trust: the code is the binary's own
//! read-only pages, exactly as trusted as the host code that loads it.
//!
//! wasmtime cannot change the protection of memory it does not own, so an
//! engine that loads code in place needs a [`CustomCodeMemory`]:
//! [`PageProtection`] turns a code region read + execute on publish, as
//! wasmtime's own code does, and back to read + write on unpublish, except
//! the binary's image, which stays read + execute. One component at a time
//! can run from the image (wasmtime registers code by address): the first
//! load in a process claims it, later ones copy ([`claim_in_place`]). x86-64 only: there the instruction cache
//! needs no maintenance and there is no branch-target marking to keep, both
//! of which wasmtime's own publishing does on aarch64. Elsewhere the image is
//! copied as before.
//!
//! [`Component::deserialize_raw`]: wasmtime::component::Component::deserialize_raw

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::CustomCodeMemory;

/// Page protection for code, with one region that is never written: the
/// binary's embedded image.
#[derive(Debug)]
pub(super) struct PageProtection {
    page: usize,
    /// Addresses of the embedded image: read-only data of the binary.
    image: Range<usize>,
}

/// Whether this target can run code in place (see the [module docs](self)).
const SUPPORTED: bool = cfg!(all(target_arch = "x86_64", unix));

/// The code memory to give every sink engine, or `None` where wasmtime's own
/// publishing must be used (see the [module docs](self)).
pub(super) fn for_engine(image: &'static [u8]) -> Option<Arc<dyn CustomCodeMemory>> {
    if !SUPPORTED {
        return None;
    }
    let page = page_size();
    let start = image.as_ptr() as usize;
    Some(Arc::new(PageProtection {
        page,
        image: start..start + image.len(),
    }))
}

/// Set while the embedded image is loaded in place. wasmtime keeps every
/// loaded code image in one process-wide table keyed by its address, so the
/// image can back one loaded component at a time; any other load copies it.
/// Taken for good: a process has one runtime (the CLI), or many that share
/// nothing (tests, embedders), for which a copy is what it always was.
static CLAIMED: AtomicBool = AtomicBool::new(false);

/// Claims `image` to be loaded in place by an engine with [`for_engine`]'s
/// code memory: `false` when it cannot be (another architecture, not on a
/// page boundary, which wasmtime's section layout needs) or was claimed
/// already. A load that then fails gives the claim back ([`release`]).
pub(super) fn claim_in_place(image: &[u8]) -> bool {
    SUPPORTED
        && !image.is_empty()
        && (image.as_ptr() as usize).is_multiple_of(page_size())
        && !CLAIMED.swap(true, Ordering::AcqRel)
}

/// Gives back a claim whose load failed.
pub(super) fn release() {
    CLAIMED.store(false, Ordering::Release);
}

/// The system's page size.
fn page_size() -> usize {
    // SAFETY: `sysconf` only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).unwrap_or(4096)
}

impl PageProtection {
    fn protect(&self, ptr: *const u8, len: usize, prot: libc::c_int) -> wasmtime::Result<()> {
        if len == 0 {
            return Ok(());
        }
        let start = ptr as usize;
        if !start.is_multiple_of(self.page) {
            wasmtime::bail!("code at {start:#x} does not start on a page boundary");
        }
        // SAFETY: wasmtime passes the text section of a code image it holds
        // (its own mapping, or the binary's embedded image), page-aligned at
        // its start; `mprotect` rounds the length up to whole pages, as
        // wasmtime's own publishing does, and the pages past the text belong
        // to the same image.
        if unsafe { libc::mprotect(ptr.cast_mut().cast(), len, prot) } != 0 {
            let e = std::io::Error::last_os_error();
            wasmtime::bail!("mprotect of code at {start:#x} ({len} bytes): {e}");
        }
        Ok(())
    }
}

impl CustomCodeMemory for PageProtection {
    fn required_alignment(&self) -> usize {
        self.page
    }

    fn publish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
        self.protect(ptr, len, libc::PROT_READ | libc::PROT_EXEC)
    }

    fn unpublish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
        // The binary's image stays executable (it is never writable, so W^X
        // holds): the claim on it is never given back once loaded, and
        // flipping pages of the binary back and forth buys nothing. wasmtime's own mappings go to the read +
        // write it expects before it unmaps them.
        if self.image.contains(&(ptr as usize)) {
            return Ok(());
        }
        self.protect(ptr, len, libc::PROT_READ | libc::PROT_WRITE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::DEFAULT_SINK_PRECOMPILED;

    #[test]
    fn the_image_is_claimed_by_one_load_at_a_time() {
        let image = DEFAULT_SINK_PRECOMPILED;
        if !SUPPORTED || image.is_empty() {
            assert!(!claim_in_place(image));
            return;
        }
        assert!(claim_in_place(image));
        assert!(
            !claim_in_place(image),
            "a second in-place load would collide in wasmtime's code registry"
        );
        release();
        assert!(claim_in_place(image), "a failed load gives the claim back");
        release();
    }

    #[test]
    fn bytes_off_a_page_boundary_are_never_claimed_or_protected() {
        let image = DEFAULT_SINK_PRECOMPILED;
        if image.len() < 2 {
            return;
        }
        assert!(!claim_in_place(&image[1..]));
        if let Some(memory) = for_engine(image) {
            let off = image[1..].as_ptr();
            assert!(memory.publish_executable(off, 16).is_err());
        }
    }
}
