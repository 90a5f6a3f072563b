// swift-tools-version:6.0
import Foundation
import PackageDescription

// Release builds of Compute target x86-64 CPUs with AVX2/FMA/F16C (Haswell and later): the
// quantizers run ~1.6x faster. SQUEEZE_PORTABLE=1 builds for any x86-64; a non-portable binary
// refuses to start, with a clear message, on a CPU without those features.
let portable = ProcessInfo.processInfo.environment["SQUEEZE_PORTABLE"] == "1"
let cpuFlags: [String] = portable ? [] : ["-target-cpu", "haswell"]
let cpuDefine: [SwiftSetting] = portable ? [] : [.define("SQUEEZE_X86_64_V3", .when(platforms: [.linux]))]
// ops/test builds without the index store (`--disable-index-store`: 88 fewer CPU seconds in a clean build)
// but SwiftPM's test discovery reads the test targets' index units: SQUEEZE_TEST_INDEX_STORE names the store
// only those targets write.
let testIndex: [SwiftSetting] = ProcessInfo.processInfo.environment["SQUEEZE_TEST_INDEX_STORE"].map {
    [.unsafeFlags(["-index-store-path", $0], .when(configuration: .debug))]
} ?? []

let package = Package(
    name: "Squeeze",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "squeeze", targets: ["squeeze"]),
        // The kernel benchmark harness (ops/bench kernels); not part of the production CLI.
        .executable(name: "squeeze-bench", targets: ["squeeze-bench"]),
        .library(name: "Compute", targets: ["Compute"]),
        .library(name: "Queue", targets: ["Queue"]),
        .library(name: "Worker", targets: ["Worker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .systemLibrary(name: "CPostgres", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CRedis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        // SHA-256 from OpenSSL's libcrypto (libssl-dev, a dependency of libpq-dev): swift-crypto's
        // BoringSSL was 366 C files compiled in every clean debug and release build.
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        // Hand-written C kernels (the BF16 Gram product); optimized in debug builds too.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(
            name: "Compute",
            dependencies: ["CBLAS", "CKernels", "COpenSSL", .product(name: "Yams", package: "Yams")],
            swiftSettings: [
                .swiftLanguageMode(.v5),
                // Kernels are the hot path: optimize them in debug builds too, for the same CPUs (every test runs
                // the debug build; -O keeps the bounds and overflow checks that -Ounchecked drops). Whole-module,
                // as release builds are: batch mode's per-file jobs cannot specialize a generic from another file
                // (the BPE merge heap ran unspecialized: 8.4 s to tokenize 1.4 MB, 3.6 s whole-module), and a clean
                // debug build took 292 s instead of about 420 s on 2 cores; LLVM's half runs on 2 threads.
                .unsafeFlags(["-O", "-wmo", "-num-threads", "2", "-emit-module-separately-wmo"] + cpuFlags,
                             .when(configuration: .debug)),
                .unsafeFlags(["-Ounchecked"] + cpuFlags, .when(configuration: .release)),
            ]
        ),
        // The migrations ship inside the binary (`migrations/` is a link to Sources/Queue/Migrations).
        .target(name: "Queue", dependencies: ["CPostgres", "CRedis"], resources: [.embedInCode("Migrations")],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        .target(name: "Worker", dependencies: ["Queue", "Compute", .product(name: "Logging", package: "swift-log"),
                                               .product(name: "CoreMetrics", package: "swift-metrics")],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        // The read-only web dashboard and Prometheus metrics (squeeze dashboard, worker --metrics-listen).
        // The HTTP server is swift-nio's (llhttp, one event loop, a thread pool for the blocking database work).
        .target(name: "Dashboard", dependencies: ["Queue", .product(name: "Prometheus", package: "swift-prometheus"),
                                                  .product(name: "CoreMetrics", package: "swift-metrics"),
                                                  .product(name: "NIOCore", package: "swift-nio"),
                                                  .product(name: "NIOPosix", package: "swift-nio"),
                                                  .product(name: "NIOHTTP1", package: "swift-nio")],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        .executableTarget(
            name: "squeeze",
            dependencies: ["Worker", "Queue", "Compute", "Dashboard", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: [.swiftLanguageMode(.v5)] + cpuDefine
        ),
        .executableTarget(
            name: "squeeze-bench",
            dependencies: ["Compute", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .target(name: "TestSupport", dependencies: ["Queue"], swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "ComputeTests", dependencies: ["Compute"], swiftSettings: [.swiftLanguageMode(.v5)] + testIndex),
        .testTarget(name: "WorkerTests", dependencies: ["Worker", "Queue", "Compute"], swiftSettings: [.swiftLanguageMode(.v5)] + testIndex),
        .testTarget(name: "QueueTests", dependencies: ["Queue", "TestSupport"], swiftSettings: [.swiftLanguageMode(.v5)] + testIndex),
        .testTarget(name: "DashboardTests", dependencies: ["Dashboard", "TestSupport", .product(name: "NIOHTTP1", package: "swift-nio")], swiftSettings: [.swiftLanguageMode(.v5)] + testIndex),
        .testTarget(name: "SqueezeCLITests", dependencies: ["Queue", "TestSupport"], swiftSettings: [.swiftLanguageMode(.v5)] + testIndex),
    ]
)
