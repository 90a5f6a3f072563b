import Foundation

/// Which input paths a job may read: only files whose real path (symlinks resolved) lies under
/// one of the allowed roots.
public struct PathPolicy: Sendable {
    public let roots: [String]

    /// `roots` are resolved to real paths; roots that do not exist are ignored.
    public init(roots: [String]) {
        self.roots = roots.compactMap { PathPolicy.realPath($0) }
    }

    /// The real path of `path`, or nil if it does not exist.
    public static func realPath(_ path: String) -> String? {
        guard let r = realpath(path, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }

    /// Throws `.pathNotAllowed` unless `path` and every shard and file of the model resolve inside a root.
    public func check(model: ModelSource) throws {
        for p in [model.path] + model.shards.map(\.path) + model.extraFiles + (model.indexFile.map { [$0] } ?? []) {
            try check(p)
        }
    }

    /// Throws `.pathNotAllowed` unless `path` resolves (symlinks included) inside a root.
    public func check(_ path: String) throws {
        guard let real = PathPolicy.realPath(path) else { throw ComputeError(.notFound, "no such file", file: path) }
        guard roots.contains(where: { real == $0 || real.hasPrefix($0 == "/" ? "/" : $0 + "/") }) else {
            let shown = real == path ? "" : " (resolves to \(real))"
            throw ComputeError(
                .pathNotAllowed,
                "input is outside the allowed input roots\(shown); allowed: "
                    + "\(roots.isEmpty ? "none" : roots.joined(separator: ", ")) (add one with --input-root or "
                    + "SQUEEZE_INPUT_ROOTS)",
                file: path)
        }
    }
}
