/// What a job does (`jobs.kind`).
public enum JobKind: String, Sendable, CaseIterable {
    /// A recipe applied to a model.
    case compress
    /// A diagnostic job that sleeps and fails as its spec says.
    case noop
}

/// A worker's state as it heartbeats it (`workers.state`); `worker_health.alive` counts
/// `running` and `draining` workers whose heartbeat is recent.
public enum WorkerState: String, Sendable, CaseIterable {
    case running, draining, stopped
    /// Its claim loop cannot reach Redis.
    case disconnected
}

/// A job's state (`jobs.state`).
public enum JobState: String, Sendable, CaseIterable {
    /// `waiting`: a dependency has not succeeded yet (not in Redis until it has).
    case waiting, queued, running, succeeded, failed, dead, cancelled

    /// States a job does not leave by itself.
    public var isTerminal: Bool { [.succeeded, .failed, .dead, .cancelled].contains(self) }
}
