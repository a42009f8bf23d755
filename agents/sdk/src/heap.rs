//! The memory allocator of every agent built with the SDK: Rust's and the
//! C library's `malloc` both take their memory from it.
//!
//! An agent lives as long as its session, and most sessions sit idle for
//! most of their life, so what an idle instance keeps resident is what
//! thousands of sessions cost the host. The C library's allocator writes a
//! boundary word at the very end of the instance's initial memory when it
//! starts, which keeps one page resident that holds nothing else. This one
//! keeps no boundary tags: blocks are handed out in order from the end of
//! the component's static data, so an idle instance touches only the pages
//! its allocations actually cover.
//!
//! Blocks come in power-of-two size classes from 16 bytes up. A freed
//! block goes on its class's list and is handed out again for the same
//! class, except the last block handed out, which gives its room back to
//! the heap's top (and is resized there when it grows or shrinks: a
//! string or vector being built grows in place). Blocks are neither split
//! nor merged otherwise. That trades some memory (up to half a block for
//! an odd size, and freed blocks of one size are not reused for another)
//! for an allocator that cannot fragment its own metadata, costs a few
//! instructions a call, and needs no page it does not hand out. The
//! instance's memory limit still bounds all of it.
//!
//! Allocations with an alignment above 16, and every allocation made
//! through the C functions (whose `free` is given no size), carry an
//! 8-byte header before the address handed out: the block's class and its
//! offset from the block's start.

#[cfg(target_feature = "atomics")]
compile_error!("the SDK's allocator keeps its state unsynchronised: agents are single-threaded");

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::UnsafeCell;
use core::ptr::null_mut;

/// The smallest block, and the alignment of every block: 16 bytes.
const MIN_BLOCK_LOG2: u32 = 4;
const MIN_ALIGN: usize = 1 << MIN_BLOCK_LOG2;
/// Classes of 16 bytes to 2 GiB: beyond that a 32-bit memory has no room.
const CLASSES: usize = 28;
const WASM_PAGE: u64 = 65536;
/// Bytes of the header before a headed allocation: its class and offset.
const HEADER: usize = 8;

unsafe extern "C" {
    /// The end of the component's static data, placed by the linker: the
    /// heap starts here and runs to the end of memory.
    static __heap_base: u8;
}

/// The heap's state. Addresses are `u64` so that the end of a full 4 GiB
/// memory is representable.
struct State {
    /// Head of each class's list of free blocks (0: empty). A free block's
    /// first word holds the address of the next.
    free: [usize; CLASSES],
    /// Where the next new block starts (0 until the first allocation).
    next: u64,
    /// The end of memory as this heap last saw it.
    end: u64,
}

struct Heap(UnsafeCell<State>);

// An agent's component is single-threaded: the state is never shared
// between threads, and no allocation re-enters another.
unsafe impl Sync for Heap {}

static HEAP: Heap = Heap(UnsafeCell::new(State {
    free: [0; CLASSES],
    next: 0,
    end: 0,
}));

/// The class whose blocks hold `size` bytes, if any does.
fn class_of(size: usize) -> Option<usize> {
    let block = size.max(MIN_ALIGN).checked_next_power_of_two()?;
    let class = (block.trailing_zeros() - MIN_BLOCK_LOG2) as usize;
    (class < CLASSES).then_some(class)
}

fn block_size(class: usize) -> u64 {
    1 << (class as u32 + MIN_BLOCK_LOG2)
}

impl State {
    /// A block of `class`, from its free list or new: null when memory
    /// cannot grow.
    fn take(&mut self, class: usize) -> *mut u8 {
        let head = self.free[class];
        if head != 0 {
            // SAFETY: a listed block is free and holds the next one's address.
            self.free[class] = unsafe { *(head as *const usize) };
            return head as *mut u8;
        }
        if self.next == 0 {
            let base = &raw const __heap_base as u64;
            self.next = base.next_multiple_of(MIN_ALIGN as u64);
            self.end = wasm32::memory_size(0) as u64 * WASM_PAGE;
        }
        let size = block_size(class);
        if self.end - self.next < size && !self.grow(size) {
            return null_mut();
        }
        let block = self.next;
        self.next += size;
        block as usize as *mut u8
    }

    /// Grows memory so that a block of `size` fits at the end of the heap.
    fn grow(&mut self, size: u64) -> bool {
        let pages = (size - (self.end - self.next)).div_ceil(WASM_PAGE);
        let old_pages = wasm32::memory_grow(0, pages as usize);
        if old_pages == usize::MAX {
            return false;
        }
        let old_end = old_pages as u64 * WASM_PAGE;
        if old_end != self.end {
            // Something else grew memory since: start afresh past it.
            self.next = old_end;
            self.end = old_end + pages * WASM_PAGE;
            return self.end - self.next >= size || self.grow(size);
        }
        self.end += pages * WASM_PAGE;
        true
    }

    /// Puts a block back on its class's list.
    ///
    /// # Safety
    /// `block` came from [`State::take`] with this `class` and is no longer used.
    unsafe fn give(&mut self, block: *mut u8, class: usize) {
        if block as u64 + block_size(class) == self.next {
            // The last block handed out: the heap's top comes back down.
            self.next = block as u64;
            return;
        }
        // SAFETY: the block is ours again and at least a word long.
        unsafe { *(block as *mut usize) = self.free[class] };
        self.free[class] = block as usize;
    }

    /// Resizes the last block handed out, where it is, to `new_class`.
    /// False if `block` is not that block or memory cannot grow, and the
    /// block is left as it was.
    fn resize_top(&mut self, block: *mut u8, class: usize, new_class: usize) -> bool {
        let start = block as u64;
        if start + block_size(class) != self.next {
            return false;
        }
        let new_size = block_size(new_class);
        self.next = start;
        let fits = self.end - start >= new_size || self.grow(new_size);
        if self.next != start {
            // Growing found memory taken past the heap's end and moved the
            // top there: the block stays where it is, below.
            return false;
        }
        self.next = start + if fits { new_size } else { block_size(class) };
        fits
    }

    /// An allocation with a header, aligned to `align` (a power of two).
    fn take_headed(&mut self, size: usize, align: usize) -> *mut u8 {
        let align = align.max(MIN_ALIGN);
        let Some(class) = size.checked_add(align).and_then(class_of) else {
            return null_mut();
        };
        let block = self.take(class);
        if block.is_null() {
            return block;
        }
        let offset = (block as usize + HEADER).next_multiple_of(align) - block as usize;
        // SAFETY: `offset` is at least HEADER and at most `align`, and the
        // block holds `size + align` bytes.
        unsafe {
            let payload = block.add(offset);
            *(payload.sub(HEADER) as *mut u32) = class as u32;
            *(payload.sub(HEADER / 2) as *mut u32) = offset as u32;
            payload
        }
    }

    /// The block, class and usable size of a headed allocation.
    ///
    /// # Safety
    /// `payload` came from [`State::take_headed`] and is not yet given back.
    unsafe fn headed(payload: *mut u8) -> (*mut u8, usize, usize) {
        // SAFETY: the header sits just before the payload.
        unsafe {
            let class = *(payload.sub(HEADER) as *const u32) as usize;
            let offset = *(payload.sub(HEADER / 2) as *const u32) as usize;
            (
                payload.sub(offset),
                class,
                block_size(class) as usize - offset,
            )
        }
    }

    /// # Safety
    /// As for [`State::headed`]; null is ignored.
    unsafe fn give_headed(&mut self, payload: *mut u8) {
        if !payload.is_null() {
            // SAFETY: as the caller promises.
            unsafe {
                let (block, class, _) = Self::headed(payload);
                self.give(block, class);
            }
        }
    }
}

fn state() -> &'static mut State {
    // SAFETY: single-threaded and never re-entered (see `Heap`'s Sync).
    unsafe { &mut *HEAP.0.get() }
}

/// Rust's allocator in every SDK agent.
struct SdkHeap;

#[global_allocator]
static GLOBAL: SdkHeap = SdkHeap;

unsafe impl GlobalAlloc for SdkHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() > MIN_ALIGN {
            return state().take_headed(layout.size(), layout.align());
        }
        match class_of(layout.size()) {
            Some(class) => state().take(class),
            None => null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe {
            if layout.align() > MIN_ALIGN {
                state().give_headed(ptr);
            } else if let Some(class) = class_of(layout.size()) {
                state().give(ptr, class);
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MIN_ALIGN
            && let (Some(class), Some(new_class)) = (class_of(layout.size()), class_of(new_size))
            && (class == new_class || state().resize_top(ptr, class, new_class))
        {
            return ptr;
        }
        // SAFETY: `layout.align()` is a power of two and `new_size` does not
        // overflow when rounded to it (GlobalAlloc's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

// The C library's allocation functions, so that it never links its own
// allocator, which would take the same memory. Only those the C library
// calls in an agent are defined: if a component ever needs another of its
// allocator's functions (`aligned_alloc`, say), the link fails on the
// duplicate definitions rather than running two allocators over one heap.
// Each defined function is also an export of the component's module, which
// the host keeps a reference to in every instance, so there are no more
// than needed.

#[unsafe(no_mangle)]
extern "C" fn malloc(size: usize) -> *mut u8 {
    state().take_headed(size, MIN_ALIGN)
}

#[unsafe(no_mangle)]
extern "C" fn __libc_malloc(size: usize) -> *mut u8 {
    malloc(size)
}

#[unsafe(no_mangle)]
extern "C" fn calloc(count: usize, size: usize) -> *mut u8 {
    let Some(total) = count.checked_mul(size) else {
        return null_mut();
    };
    let payload = malloc(total);
    if !payload.is_null() {
        // SAFETY: the allocation holds `total` bytes; a reused block is dirty.
        unsafe { payload.write_bytes(0, total) };
    }
    payload
}

#[unsafe(no_mangle)]
extern "C" fn __libc_calloc(count: usize, size: usize) -> *mut u8 {
    calloc(count, size)
}

/// # Safety
/// `payload` is null or came from these functions and was not freed.
#[unsafe(no_mangle)]
unsafe extern "C" fn free(payload: *mut u8) {
    // SAFETY: as the caller promises.
    unsafe { state().give_headed(payload) }
}

/// # Safety
/// As for [`free`].
#[unsafe(no_mangle)]
unsafe extern "C" fn __libc_free(payload: *mut u8) {
    // SAFETY: as the caller promises.
    unsafe { free(payload) }
}

/// # Safety
/// As for [`free`].
#[unsafe(no_mangle)]
unsafe extern "C" fn realloc(payload: *mut u8, size: usize) -> *mut u8 {
    if payload.is_null() {
        return malloc(size);
    }
    // SAFETY: as the caller promises.
    let (_, _, usable) = unsafe { State::headed(payload) };
    if size <= usable {
        return payload;
    }
    let new = malloc(size);
    if !new.is_null() {
        // SAFETY: both hold at least `usable` bytes and are distinct.
        unsafe {
            core::ptr::copy_nonoverlapping(payload, new, usable);
            free(payload);
        }
    }
    new
}
