import Foundation

/// A directory under the scratch root made once per run by whichever test process gets there
/// first: `make` builds it under another name and it is then renamed into place (the first to
/// finish is kept), so no process reads a directory another is still writing.
public enum MadeOnce {
    /// Makes `path` unless it is there; false when `make` failed (what it built is removed).
    public static func directory(_ path: String, _ make: (_ building: String) throws -> Bool) rethrows -> Bool {
        let fm = FileManager.default
        if fm.fileExists(atPath: path) { return true }
        let building = path + ".building-\(getpid())-\(UUID().uuidString.prefix(8))"
        guard try make(building) else {
            try? fm.removeItem(atPath: building)
            return false
        }
        // Another process finished first: keep theirs.
        if rename(building, path) != 0 { try? fm.removeItem(atPath: building) }
        return true
    }
}

/// FNV-1a (64-bit) of `bytes`, continued from `hash`: the names of what tests make once per run.
func fnv1a<S: Sequence<UInt8>>(_ bytes: S, from hash: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
    var h = hash
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}
