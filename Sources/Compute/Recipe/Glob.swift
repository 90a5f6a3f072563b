import Foundation

/// Shell-style glob matching on tensor names via fnmatch(3) without FNM_PATHNAME or FNM_PERIOD.
public enum Glob {
    public static func match(_ pattern: String, _ name: String) -> Bool {
        fnmatch(pattern, name, 0) == 0
    }
}
