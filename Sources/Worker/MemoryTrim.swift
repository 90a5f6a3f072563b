#if os(Linux)
    /// glibc's `malloc_trim` (in <malloc.h>, which the Glibc module does not export).
    @_silgen_name("malloc_trim")
    private func glibcMallocTrim(_ pad: Int) -> Int32
#endif

/// Returns free heap memory to the OS (glibc keeps freed large buffers in per-thread arenas).
func releaseFreeMemory() {
    #if os(Linux)
        _ = glibcMallocTrim(0)
    #endif
}
