import Compute
import Foundation
import Queue

/// The diagnostic noop job's planned failure.
struct NoopFailure: Error, CustomStringConvertible {
    let attempt: Int
    let of: Int
    var description: String { "noop: planned failure on attempt \(attempt) (fails the first \(of) attempts)" }
}
