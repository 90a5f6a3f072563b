#if os(Linux)
    /// glibc's `mallopt` (in <malloc.h>, which the Glibc module does not export).
    @_silgen_name("mallopt")
    private func glibcMallopt(_ param: Int32, _ value: Int32) -> Int32
#endif

/// Tells glibc's allocator to keep freed buffers for reuse during a run instead of handing them
/// back to the kernel and faulting fresh zeroed pages in for the next one of the same size.
enum AllocatorTuning {
    /// Buffers up to 32 MiB (glibc's largest mmap threshold: every per-chunk activation of a
    /// calibration pass and every Hessian) come from the heap; the heap's top is trimmed only
    /// past 1 GiB and grows 64 MiB at a time. Callers that must give memory back between runs
    /// use `malloc_trim`, which ignores these thresholds. Without them, a calibrated SmolLM2 run
    /// spends ~1 s more in page faults (3.0 s against 1.9 s of system time for 32 windows).
    static func keepFreedMemory() {
        #if os(Linux)
            // M_TRIM_THRESHOLD -1, M_TOP_PAD -2, M_MMAP_THRESHOLD -3.
            _ = glibcMallopt(-3, 32 << 20)
            _ = glibcMallopt(-1, 1 << 30)
            _ = glibcMallopt(-2, 64 << 20)
        #endif
    }
}
