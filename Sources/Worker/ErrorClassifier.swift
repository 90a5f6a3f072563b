import Compute
import Foundation
import Queue

/// Classifies errors into (code, message, permanent).
enum ErrorClassifier {
    static func classify(_ error: Error) -> (code: JobErrorCode, message: String, permanent: Bool) {
        switch error {
        case let e as ComputeError:
            return (JobErrorCode(rawValue: e.code.rawValue) ?? .internal, e.description, e.isPermanent)
        case let e as RecipeError: return (.invalidRecipe, "recipe: \(e.description)", true)
        case let e as PostgresError: return (.database, e.description, false)
        case let e as RedisError: return (.redis, e.description, false)
        case let e as NoopFailure: return (.plannedFailure, e.description, false)
        default: return (.internal, String(describing: error), false)
        }
    }
}
