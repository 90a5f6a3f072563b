import Foundation
import Queue
import Testing
@testable import Worker

/// The sweeper decides from the directory names, this host's processes and the job states it is
/// handed (a fake here: PostgreSQL is not the point).
@Suite struct DiskSweeperTests {
    func root() throws -> ArtifactPublisher {
        let d = NSTemporaryDirectory() + "sweep-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: d + "/staging", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: d + "/work", withIntermediateDirectories: true)
        return try ArtifactPublisher(root: d)
    }

    func dir(_ p: ArtifactPublisher, _ rel: String) throws {
        try FileManager.default.createDirectory(atPath: p.root + "/" + rel, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: p.root + "/" + rel + "/f", contents: Data(count: 100))
    }

    func exists(_ p: ArtifactPublisher, _ rel: String) -> Bool { FileManager.default.fileExists(atPath: p.root + "/" + rel) }

    @Test func removesOnlyWhatNoLiveAttemptUses() throws {
        let p = try root()
        let running = UUID(), done = UUID(), queued = UUID(), gone = UUID()
        let r = running.uuidString.lowercased(), d = done.uuidString.lowercased(), q = queued.uuidString.lowercased()
        let g = gone.uuidString.lowercased()
        let me = getpid()
        try dir(p, "staging/\(r)-attempt-2-here-\(me)")           // live attempt, live process: kept
        try dir(p, "staging/\(r)-attempt-1-here-\(me)")           // superseded attempt: removed
        try dir(p, "staging/\(r)-attempt-2-here-4194303")         // same attempt, process gone on this host: removed
        try dir(p, "staging/\(r)-attempt-2-elsewhere-4194303")    // another host's live attempt: kept
        try dir(p, "staging/\(d)-attempt-1-elsewhere-1")          // finished job: removed
        try dir(p, "staging/not-a-staging-dir")                    // not ours: kept
        try dir(p, "work/\(d)")                                     // terminal: removed
        try dir(p, "work/\(q)")                                     // queued: kept
        try dir(p, "work/\(g)")                                     // unknown and new: kept (its row may not be committed yet)
        let states: [UUID: (state: String, attempt: Int)] = [running: ("running", 2), done: ("succeeded", 1), queued: ("queued", 1)]
        var asked = Set<UUID>()
        let result = try DiskSweeper(publisher: p, host: "here").sweep { ids in
            asked.formUnion(ids)
            return states.filter { ids.contains($0.key) }
        }
        #expect(asked == [running, done, queued, gone])
        #expect(result.staging == 3 && result.work == 1)
        #expect(result.bytes == 400)
        #expect(exists(p, "staging/\(r)-attempt-2-here-\(me)"))
        #expect(!exists(p, "staging/\(r)-attempt-1-here-\(me)"))
        #expect(!exists(p, "staging/\(r)-attempt-2-here-4194303"))
        #expect(exists(p, "staging/\(r)-attempt-2-elsewhere-4194303"))
        #expect(!exists(p, "staging/\(d)-attempt-1-elsewhere-1"))
        #expect(exists(p, "staging/not-a-staging-dir"))
        #expect(!exists(p, "work/\(d)") && exists(p, "work/\(q)") && exists(p, "work/\(g)"))
    }

    @Test func stagingNamesParseWithAndWithoutHost() {
        let id = UUID()
        let s = id.uuidString.lowercased()
        #expect(StagingName("\(s)-attempt-3-web-01.example-77") == StagingName(job: id, attempt: 3, host: "web-01.example", pid: 77))
        #expect(StagingName("\(s)-attempt-3-77") == StagingName(job: id, attempt: 3, host: nil, pid: 77))
        #expect(StagingName("\(s)-attempt-x-77") == nil)
        #expect(StagingName("nope") == nil)
    }
}
