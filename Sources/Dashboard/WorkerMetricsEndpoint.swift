import CoreMetrics
import Foundation
import Prometheus

/// `squeeze worker --metrics-listen`: swift-metrics bootstrapped onto a Prometheus registry, served
/// at `/metrics` (with the process's resident memory read at each scrape) on a background thread.
public enum WorkerMetricsEndpoint {
    /// Bootstraps swift-metrics and starts serving; returns the bound port. Call once, before the worker is made.
    public static func start(_ address: ListenAddress) throws -> UInt16 {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let rss = registry.makeGauge(
            descriptor: FleetMetrics.name("squeeze_worker_rss_bytes", "Resident memory of this worker process."))
        var limits = HTTPServerLimits()
        limits.handlerThreads = 2
        let server = try HTTPServer(address, limits: limits) { request in
            switch request.path {
            case "/metrics":
                rss.set(Double(residentBytes()))
                return .metrics(registry.emitToBuffer())
            case "/healthz": return .text(200, "ok")
            default: return .text(404, "not found: \(request.path) (try /metrics)")
            }
        }
        // The server runs for the life of the process.
        Self.running = server
        return server.port
    }

    nonisolated(unsafe) static var running: HTTPServer?

    /// Resident set size from /proc/self/statm (0 where there is none).
    static func residentBytes() -> Int64 {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int64(fields[1]) else { return 0 }
        return pages * Int64(sysconf(Int32(_SC_PAGESIZE)))
    }
}
