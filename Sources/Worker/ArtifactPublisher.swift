import Compute
import Foundation

/// Staging and atomic publication under the artifact root:
/// `<root>/staging/<job>-attempt-<n>-<host>-<pid>/` → rename → `<root>/artifacts/<job>/attempt-<n>/`.
public struct ArtifactPublisher: Sendable {
    public let root: String

    /// `root` must exist; it is resolved to a real path so nothing is written outside it.
    public init(root: String) throws {
        guard let real = realpath(root, nil) else {
            throw ComputeError(
                .io, "artifact root does not exist or is not accessible: \(String(cString: strerror(errno)))",
                file: root)
        }
        self.root = String(cString: real)
        free(real)
    }

    /// This machine's name as used in staging directory names (letters, digits, '.', '-' only).
    public static let hostTag: String = {
        let h = ProcessInfo.processInfo.hostName.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" }
        return h.isEmpty ? "host" : String(h.prefix(64))
    }()

    public func stagingDir(job: UUID, attempt: Int) -> String {
        "\(root)/staging/\(job.uuidString.lowercased())-attempt-\(attempt)-\(Self.hostTag)-\(getpid())"
    }

    /// Relative path of a published attempt directory.
    public func relativeAttemptDir(job: UUID, attempt: Int) -> String {
        "artifacts/\(job.uuidString.lowercased())/attempt-\(attempt)"
    }

    /// Relative path of a job's work directory (checkpoints shared by all its attempts).
    public func relativeWorkDir(job: UUID) -> String { "work/\(job.uuidString.lowercased())" }

    /// Creates (or keeps) the job's work directory and returns its path.
    public func prepareWorkDir(job: UUID) throws -> String {
        let dir = "\(root)/\(relativeWorkDir(job: job))"
        try FileOps.makeDirectory(dir)
        return dir
    }

    /// Creates an empty staging directory (removing leftovers of this same attempt).
    public func prepareStaging(job: UUID, attempt: Int) throws -> String {
        let dir = stagingDir(job: job, attempt: attempt)
        try? FileManager.default.removeItem(atPath: dir)
        try FileOps.makeDirectory(dir)
        return dir
    }

    /// fsyncs the staging directory and renames it into place; returns the published path.
    public func publish(staging: String, job: UUID, attempt: Int) throws -> String {
        try FileOps.fsyncDirectory(staging)
        let parent = "\(root)/artifacts/\(job.uuidString.lowercased())"
        try FileOps.makeDirectory(parent)
        let dest = "\(root)/\(relativeAttemptDir(job: job, attempt: attempt))"
        if FileManager.default.fileExists(atPath: dest) {
            // A previous process of this same attempt published and died before committing: replace it.
            try FileManager.default.removeItem(atPath: dest)
        }
        guard rename(staging, dest) == 0 else {
            throw ComputeError(
                .io, "cannot publish artifact: rename failed: \(String(cString: strerror(errno)))", file: dest)
        }
        try FileOps.fsyncDirectory(parent)
        return dest
    }

    /// Removes a directory we created (staging, or a published attempt that lost its fence).
    public func discard(_ path: String) {
        guard path.hasPrefix(root + "/") else { return }
        try? FileManager.default.removeItem(atPath: path)
    }
}
