import Compute
import Foundation
import Queue

/// Why a job stopped without succeeding, and whether retrying can help.
enum JobStop: Error {
    case cancelled
    case leaseLost
    case draining
}
