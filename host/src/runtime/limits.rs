//! What one agent instance may use, and the limiter that enforces it.

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Core instances a component may contain (a Rust guest has about three:
/// its module plus the shims `wasm-component-ld` adds; a Python guest
/// built by componentize-py with its WASI imports stubbed out has 38).
pub(crate) const CORE_INSTANCES_PER_COMPONENT: u32 = 48;
/// Tables a component may contain.
pub(crate) const TABLES_PER_COMPONENT: u32 = 4;

/// Per-instance limits; one set for the whole process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuestLimits {
    /// Linear memory per instance, in bytes.
    pub memory_bytes: usize,
    /// Elements per table.
    pub table_elements: usize,
    /// Wasm stack per call, in bytes.
    pub wasm_stack_bytes: usize,
    /// Wall-clock budget of one call into a guest.
    pub call_timeout: Duration,
    /// Instances alive at once across all sessions (pool size).
    pub max_instances: u32,
    /// Largest answer (sum of its parts) a call may return.
    pub max_response_bytes: usize,
    /// Largest update a guest may emit; bigger ones are dropped.
    pub max_emit_bytes: usize,
    /// Updates a guest may emit per call; later ones are dropped.
    pub max_emits_per_call: u32,
    /// Log lines per second an instance may write (bursts up to twice).
    pub log_lines_per_second: u32,
}

impl Default for GuestLimits {
    fn default() -> Self {
        GuestLimits {
            memory_bytes: 64 << 20,
            table_elements: 20_000,
            wasm_stack_bytes: 512 << 10,
            call_timeout: Duration::from_secs(5),
            max_instances: 5_000,
            max_response_bytes: 1 << 20,
            max_emit_bytes: 64 << 10,
            max_emits_per_call: 100,
            log_lines_per_second: 50,
        }
    }
}

/// The instance went past its memory limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit exceeded: the agent asked for {desired} bytes, its limit is {limit}")]
pub struct MemoryLimitExceeded {
    pub desired: usize,
    pub limit: usize,
}

/// Enforces [`GuestLimits`] on one store. Growing past the memory limit
/// traps with [`MemoryLimitExceeded`] instead of failing the allocation,
/// so the cause reaches the client rather than a confusing guest abort.
pub(crate) struct Limiter {
    pub(crate) memory_bytes: usize,
    pub(crate) table_elements: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                desired,
                limit: self.memory_bytes,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }

    fn instances(&self) -> usize {
        CORE_INSTANCES_PER_COMPONENT as usize
    }

    fn tables(&self) -> usize {
        TABLES_PER_COMPONENT as usize
    }

    fn memories(&self) -> usize {
        1
    }
}
